"""Channel adapters: each turns what arrived into the same few domain calls."""
