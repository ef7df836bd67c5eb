//! Integration tests of the simulator (one test binary, modules per concern).
