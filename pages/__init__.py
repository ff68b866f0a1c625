"""Local web pages (labelling, play): one small server (pages/server.py) and each page's
static files in pages/static/<page>/. Jobs in jobs/ build a Page and serve it."""
