//! The store's own settings as a new or an existing file gets them: page size, checkpoints,
//! the WAL's cap, the readers' mapping.

use super::*;

fn pragma(conn: &Connection, name: &str) -> Result<i64, StoreError> {
    one(conn, &format!("PRAGMA {name}"), [], |r| r.get(0)).map_err(sqlite_err)
}

#[tokio::test]
async fn a_new_database_gets_the_small_pages_and_the_checkpoint_setting() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(&dir.path().join("orders.db")).unwrap();
    let read = store.read(|c| pragma(c, "page_size")).await.unwrap();
    assert_eq!(read, i64::from(PAGE_SIZE));
    let writer = store
        .write(|c| Ok((pragma(c, "page_size")?, pragma(c, "wal_autocheckpoint")?)))
        .await
        .unwrap();
    let expected = SqliteOptions::default().wal_autocheckpoint;
    assert_eq!(writer, (i64::from(PAGE_SIZE), i64::from(expected)));
}

#[tokio::test]
async fn readers_map_the_database_and_the_writer_does_not() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(&dir.path().join("orders.db")).unwrap();
    let read = store.read(|c| pragma(c, "mmap_size")).await.unwrap();
    assert_eq!(read as u64, MAX_MMAP_BYTES, "not capped below the setting");
    assert_eq!(store.write(|c| pragma(c, "mmap_size")).await.unwrap(), 0);
    let options = SqliteOptions {
        reader_mmap_bytes: 0,
        ..Default::default()
    };
    let off = SqliteStore::open_with(&dir.path().join("off.db"), options).unwrap();
    assert_eq!(off.read(|c| pragma(c, "mmap_size")).await.unwrap(), 0);
}

#[tokio::test]
async fn the_checkpoint_setting_reaches_the_writer() {
    let dir = tempfile::tempdir().unwrap();
    let options = SqliteOptions {
        wal_autocheckpoint: 4321,
        ..Default::default()
    };
    let store = SqliteStore::open_with(&dir.path().join("orders.db"), options).unwrap();
    let set = store
        .write(|c| pragma(c, "wal_autocheckpoint"))
        .await
        .unwrap();
    assert_eq!(set, 4321);
}

#[tokio::test]
async fn an_existing_database_keeps_its_page_size_and_takes_writes() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("orders.db");
    {
        let conn = Connection::open(&path).unwrap();
        conn.execute_batch("PRAGMA page_size = 4096; CREATE TABLE earlier (x);")
            .unwrap();
    }
    let store = SqliteStore::open(&path).unwrap();
    let (size, earlier) = store
        .write(|c| {
            exec(c, "INSERT INTO earlier (x) VALUES (1)", []).map_err(sqlite_err)?;
            let n = one(c, "SELECT count(*) FROM earlier", [], |r| {
                r.get::<_, i64>(0)
            })
            .map_err(sqlite_err)?;
            Ok((pragma(c, "page_size")?, n))
        })
        .await
        .unwrap();
    assert_eq!((size, earlier), (4096, 1));
    let orders = store
        .read(|c| {
            one(c, "SELECT count(*) FROM orders", [], |r| r.get::<_, i64>(0)).map_err(sqlite_err)
        })
        .await
        .unwrap();
    assert_eq!(orders, 0, "the migrations ran on the older file");
}

#[tokio::test]
async fn a_wal_that_outgrew_the_checkpoints_is_cut_back_once_they_catch_up() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("orders.db");
    let wal = dir.path().join("orders.db-wal");
    let options = SqliteOptions {
        wal_autocheckpoint: 100,
        ..Default::default()
    };
    let limit = wal_limit_bytes(i64::from(PAGE_SIZE), options.wal_autocheckpoint);
    let store = SqliteStore::open_with(&path, options).unwrap();
    let set = store
        .write(|c| pragma(c, "journal_size_limit"))
        .await
        .unwrap();
    assert_eq!(set, limit);
    store
        .write(|c| exec(c, "CREATE TABLE scratch (x BLOB)", []).map_err(sqlite_err))
        .await
        .unwrap();
    // A reader on an old snapshot keeps every checkpoint from copying past it: the WAL grows.
    let reader = Connection::open(&path).unwrap();
    reader
        .execute_batch("BEGIN; SELECT count(*) FROM orders;")
        .unwrap();
    for _ in 0..40 {
        store
            .write(|c| {
                exec(c, "INSERT INTO scratch (x) VALUES (zeroblob(20000))", []).map_err(sqlite_err)
            })
            .await
            .unwrap();
    }
    let grown = std::fs::metadata(&wal).unwrap().len();
    assert!(
        grown > 2 * limit as u64,
        "the WAL did not outgrow the cap: {grown}"
    );
    reader.execute_batch("COMMIT").unwrap();
    // The next commits checkpoint all of it, restart the log and truncate it.
    for _ in 0..4 {
        store
            .write(|c| exec(c, "INSERT INTO scratch (x) VALUES (1)", []).map_err(sqlite_err))
            .await
            .unwrap();
    }
    let now = std::fs::metadata(&wal).unwrap().len();
    assert!(
        now <= limit as u64,
        "the WAL kept {now} bytes (cap {limit}, grown to {grown})"
    );
}
