//! The store contract suite against the SQLite store.

use orders_test_support as common;

use orders_domain::store::OrderStore;
use std::sync::Arc;

async fn sqlite() -> (Arc<dyn OrderStore>, tempfile::TempDir) {
    let (store, dir) = common::temp_store();
    (store, dir)
}

orders_test_support::store_contract_tests!(sqlite);
