"""Child networks: candidate ops, the cells and skeletons every architecture compiles to,
weight-sharing supernets, architecture relaxations, and what a network measures (its size,
cost, latency, and a zero-cost proxy)."""
