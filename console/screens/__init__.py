"""The console's screens; each talks to the backend only through workers."""
