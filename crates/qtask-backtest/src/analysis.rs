//! Signal analysis (filled in below).
