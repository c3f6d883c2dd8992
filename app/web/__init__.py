"""The HTTP pieces the API, the dashboard and the domains' controllers share.

Neutral ground: `app.api` and `app.ui` both use it and never import each
other. It holds the connection dependency (`connection`), keyset cursors and
paging (`pagination`), exact JSON (`responses`, `fields`), the problem+json
error mapping (`problems`) and the request checks every app applies
(`security`, `options`). It imports no front end and no data domain.
"""
