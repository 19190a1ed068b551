//! GeoIP (in progress)
