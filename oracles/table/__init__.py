"""The op tables: everything the suite knows about each op, one entry per op."""
