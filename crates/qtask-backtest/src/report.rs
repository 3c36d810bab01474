//! Report section (filled in below).
