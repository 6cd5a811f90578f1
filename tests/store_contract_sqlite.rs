//! The store contract suite against the SQLite store.

mod common;

use orders::store::OrderStore;
use std::sync::Arc;

async fn sqlite() -> (Arc<dyn OrderStore>, tempfile::TempDir) {
    let (store, dir) = common::temp_store();
    (store, dir)
}

store_contract_tests!(sqlite);
