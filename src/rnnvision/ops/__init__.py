"""Reference operations (the spec) and their fast twins."""
