//! The book, compiled as doc-tests.
