"""Built-in pipelines; importing this package registers them."""

from app.pipelines import builtin, otc

__all__ = ["builtin", "otc"]
