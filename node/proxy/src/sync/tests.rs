//! MapSync over in-memory maps.
