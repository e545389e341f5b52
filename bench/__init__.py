"""`make bench`: keyadmin under gunicorn against the local App Services server (see run.py)."""
