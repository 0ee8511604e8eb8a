"""Child networks: ops, cells, supernets, relaxations, and what a network measures."""
