"""Planted errors: wrong backwards, derivatives and conventions the suite must catch."""
