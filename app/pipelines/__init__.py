"""Built-in pipelines; importing this package registers them."""

from app.pipelines import builtin

__all__ = ["builtin"]
