"""`ingest serve`: the archive read over HTTP, a JSON API and server-rendered pages.

The web layer reads through `ingest.store.Store` (read-only) and `ingest.query`'s records;
it never imports the ingest path. `create_app` builds the application, `ingest.web.server`
checks the settings and runs it.
"""
