"""The hub's web side: the JSON API over the index (api.py), served by `modelhub hub serve`."""
