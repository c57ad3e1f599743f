"""The hub's web side, served by `modelhub hub serve`: pages for people (pages.py, templates/) and
the same data as JSON (api.py), over the index database; service.py runs it inside `modelhub up`."""
