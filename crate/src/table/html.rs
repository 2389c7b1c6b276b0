//! DataFrame → HTML table (being written).
