//! Deterministic two-peer simulation of MOBIKE tasks (tests only).
