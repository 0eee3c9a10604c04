"""Reusable widgets of the console; they know nothing of the backend."""
