//! The starting catalogue every store seeds on first start: five products with large stock
//! and one sold out (documented in README.md). One list, so the embedded and the DynamoDB
//! stores start from the same stock.

/// `(productId, available)` pairs.
pub const CATALOGUE: [(&str, i64); 6] = [
    ("laptop", 1_000_000),
    ("monitor", 1_000_000),
    ("keyboard", 1_000_000),
    ("mouse", 1_000_000),
    ("headphones", 1_000_000),
    ("sold-out", 0),
];
