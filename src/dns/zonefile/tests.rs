//! Unit tests of the zone file reader.
