//! Unit tests: a hand-driven cluster.
