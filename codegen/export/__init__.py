"""`ariel export`: a model as a library for the user's own firmware."""
