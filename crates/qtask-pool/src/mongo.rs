//! The MongoDB backend (cargo feature `mongodb`): one collection per pool, as in Qlib.
//!
//! Claims are one `find_one_and_update` sorted by priority then `_id`; a unique index on
//! `def_hash` deduplicates. Updates that need the time are aggregation pipelines using
//! `$$NOW`, so lease expiry follows the server's clock. Strings and JSON written through a
//! pipeline are wrapped in `$literal`, so a value that starts with `$` stays data.

use std::sync::Mutex;
use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};
use mongodb::IndexModel;
use mongodb::bson::{Bson, Document, doc, oid::ObjectId};
use mongodb::error::{ErrorKind, WriteFailure};
use mongodb::options::{IndexOptions, ReturnDocument};
use mongodb::sync::{Client, Collection, Database};
use serde_json::Value;

use crate::error::{PoolError, Result};
use crate::pool::{CreateOptions, DEFAULT_MAX_ATTEMPTS, FetchOptions, TaskPool, TaskStat};
use crate::query::{Cond, Field, Op, Query};
use crate::status::Status;
use crate::store_url::StoreUrl;
use crate::task::{ClaimedTask, Created, Task};
use crate::{SCHEMA_VERSION, check_defs};

const META: &str = "qtask_meta";
const POOLS: &str = "qtask_pools";

/// A pool stored as a MongoDB collection.
pub struct MongoPool {
    db: Database,
    coll: Collection<Document>,
    pool: String,
    // Serialises nothing on the server; it only makes `&self` methods share one client safely.
    _guard: Mutex<()>,
}

fn err(e: mongodb::error::Error) -> PoolError {
    PoolError::Mongo(e.to_string())
}

fn is_duplicate(e: &mongodb::error::Error) -> bool {
    matches!(&*e.kind, ErrorKind::Write(WriteFailure::WriteError(w)) if w.code == 11000)
}

/// JSON to BSON by hand: serde_json's `arbitrary_precision` numbers do not serialise through
/// serde's data model into BSON. BSON has no integer beyond 64 bits (pymongo refuses them
/// too): such a number is refused rather than rounded.
fn to_bson(v: &Value) -> Result<Bson> {
    Ok(match v {
        Value::Null => Bson::Null,
        Value::Bool(b) => Bson::Boolean(*b),
        Value::Number(n) => {
            if let Some(i) = n.as_i64() {
                Bson::Int64(i)
            } else if qtask_core::json::is_big_integer(n) || n.as_u64().is_some() {
                return Err(PoolError::Invalid(format!(
                    "MongoDB stores integers of at most 64 bits (signed); {n} does not fit: \
                     use a SQLite or PostgreSQL pool, or quote it"
                )));
            } else {
                Bson::Double(n.as_f64().unwrap_or(f64::NAN))
            }
        }
        Value::String(s) => Bson::String(s.clone()),
        Value::Array(items) => Bson::Array(items.iter().map(to_bson).collect::<Result<_>>()?),
        Value::Object(map) => {
            let mut d = Document::new();
            for (k, item) in map {
                d.insert(k.clone(), to_bson(item)?);
            }
            Bson::Document(d)
        }
    })
}

fn lit(b: Bson) -> Bson {
    Bson::Document(doc! { "$literal": b })
}

fn time(b: Option<&Bson>) -> Option<DateTime<Utc>> {
    match b {
        Some(Bson::DateTime(d)) => Utc.timestamp_millis_opt(d.timestamp_millis()).single(),
        _ => None,
    }
}

fn int(b: Option<&Bson>) -> Option<i64> {
    match b {
        Some(Bson::Int32(n)) => Some(i64::from(*n)),
        Some(Bson::Int64(n)) => Some(*n),
        Some(Bson::Double(x)) => Some(*x as i64),
        _ => None,
    }
}

fn string(d: &Document, key: &str) -> Option<String> {
    d.get_str(key).ok().map(str::to_string)
}

fn read_task(d: &Document) -> Result<Task> {
    let id = match d.get("_id") {
        Some(Bson::ObjectId(o)) => o.to_hex(),
        Some(other) => other.to_string(),
        None => return Err(PoolError::Mongo("document without _id".into())),
    };
    let json = |key: &str| {
        d.get(key)
            .filter(|b| !matches!(b, Bson::Null))
            .map(|b| b.clone().into_relaxed_extjson())
    };
    Ok(Task {
        id,
        def: json("def").unwrap_or(Value::Null),
        status: string(d, "status").unwrap_or_default().parse()?,
        priority: int(d.get("priority")),
        res: json("res"),
        attempts: int(d.get("attempts")).unwrap_or(0).max(0) as u32,
        max_attempts: int(d.get("max_attempts")).map(|n| n.max(0) as u32),
        error: string(d, "error"),
        lease_owner: string(d, "lease_owner"),
        lease_expires_at: time(d.get("lease_expires_at")),
        created_at: time(d.get("created_at")).unwrap_or_default(),
        started_at: time(d.get("started_at")),
        finished_at: time(d.get("finished_at")),
    })
}

/// The MongoDB filter for one condition.
fn cond_filter(c: &Cond) -> Result<Document> {
    let key = match &c.field {
        Field::Id => "_id".to_string(),
        Field::Status => "status".to_string(),
        Field::Priority => "priority".to_string(),
        Field::Attempts => "attempts".to_string(),
        Field::Def(p) if p.is_empty() => "def".to_string(),
        Field::Def(p) => format!("def.{}", p.join(".")),
        Field::Res(p) if p.is_empty() => "res".to_string(),
        Field::Res(p) => format!("res.{}", p.join(".")),
    };
    let val = |v: &Value| -> Result<Bson> {
        if c.field == Field::Id {
            // An id that is not an ObjectId can match nothing; keep it as a string.
            return Ok(match v.as_str().and_then(|s| ObjectId::parse_str(s).ok()) {
                Some(o) => Bson::ObjectId(o),
                None => Bson::String(v.to_string()),
            });
        }
        to_bson(v)
    };
    let list = |vs: &[Value]| -> Result<Bson> {
        Ok(Bson::Array(vs.iter().map(val).collect::<Result<_>>()?))
    };
    // A missing res is stored as null; Mongo's {res: {$exists: false}} would miss it.
    if matches!(&c.field, Field::Res(p) if p.is_empty())
        && let Op::Exists(b) = c.op
    {
        return Ok(if b {
            doc! { "res": { "$ne": null } }
        } else {
            doc! { "res": null }
        });
    }
    let op = match &c.op {
        Op::Eq(v) => doc! { "$eq": val(v)? },
        Op::Ne(v) => doc! { "$ne": val(v)? },
        Op::In(vs) => doc! { "$in": list(vs)? },
        Op::Nin(vs) => doc! { "$nin": list(vs)? },
        Op::Exists(b) => doc! { "$exists": *b },
        Op::Gt(v) => doc! { "$gt": val(v)? },
        Op::Gte(v) => doc! { "$gte": val(v)? },
        Op::Lt(v) => doc! { "$lt": val(v)? },
        Op::Lte(v) => doc! { "$lte": val(v)? },
    };
    Ok(doc! { key: op })
}

fn filter(q: &Query) -> Result<Document> {
    let parts: Vec<Bson> = q
        .conds
        .iter()
        .map(|c| cond_filter(c).map(Bson::Document))
        .collect::<Result<_>>()?;
    Ok(if parts.is_empty() {
        doc! {}
    } else {
        doc! { "$and": parts }
    })
}

fn and(a: Document, b: Document) -> Document {
    doc! { "$and": [a, b] }
}

const CLEAR_LEASE: [&str; 4] = [
    "lease_owner",
    "lease_token",
    "lease_expires_at",
    "claimed_from",
];

fn cleared() -> Document {
    let mut d = Document::new();
    for k in CLEAR_LEASE {
        d.insert(k, Bson::Null);
    }
    d
}

fn database_name(url: &str) -> String {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let path = rest.split_once('/').map_or("", |(_, p)| p);
    let name = path.split('?').next().unwrap_or("");
    if name.is_empty() {
        "qtask".to_string()
    } else {
        name.to_string()
    }
}

impl MongoPool {
    /// Connects to `url` (database from its path, default `qtask`) and binds to `pool`.
    pub fn open(url: &str, pool: &str) -> Result<Self> {
        crate::check_pool_name(pool)?;
        let shown = StoreUrl::redacted(url);
        let mut uri = url.to_string();
        if !uri.contains("serverSelectionTimeoutMS") {
            // Fail in seconds, not the driver's default 30 s, when no server answers.
            let sep = if uri.contains('?') {
                "&"
            } else if uri.split_once("://").is_some_and(|(_, r)| r.contains('/')) {
                "?"
            } else {
                "/?"
            };
            uri = format!("{uri}{sep}serverSelectionTimeoutMS=5000");
        }
        let connect = |e: mongodb::error::Error| PoolError::Connect {
            url: shown.clone(),
            reason: e.to_string(),
        };
        let client = Client::with_uri_str(&uri).map_err(connect)?;
        let db = client.database(&database_name(url));
        db.run_command(doc! { "ping": 1 }).run().map_err(connect)?;
        let meta = db.collection::<Document>(META);
        let found = meta
            .find_one(doc! { "_id": "schema_version" })
            .run()
            .map_err(err)?
            .and_then(|d| int(d.get("value")))
            .unwrap_or(0);
        if found > SCHEMA_VERSION {
            return Err(PoolError::SchemaTooNew {
                url: shown,
                found,
                supported: SCHEMA_VERSION,
            });
        }
        if found < SCHEMA_VERSION {
            meta.update_one(
                doc! { "_id": "schema_version" },
                doc! { "$set": { "value": SCHEMA_VERSION } },
            )
            .upsert(true)
            .run()
            .map_err(err)?;
        }
        let coll = db.collection::<Document>(pool);
        coll.create_index(
            IndexModel::builder()
                .keys(doc! { "def_hash": 1 })
                .options(IndexOptions::builder().unique(true).build())
                .build(),
        )
        .run()
        .map_err(err)?;
        coll.create_index(
            IndexModel::builder()
                .keys(doc! { "status": 1, "priority": -1, "_id": 1 })
                .build(),
        )
        .run()
        .map_err(err)?;
        Ok(MongoPool {
            db,
            coll,
            pool: pool.to_string(),
            _guard: Mutex::new(()),
        })
    }

    fn not_found(&self, id: &str) -> PoolError {
        PoolError::NotFound {
            pool: self.pool.clone(),
            id: id.to_string(),
        }
    }

    fn oid(&self, id: &str) -> Result<ObjectId> {
        ObjectId::parse_str(id).map_err(|_| self.not_found(id))
    }

    fn pool_max_attempts(&self) -> Result<i64> {
        Ok(self
            .db
            .collection::<Document>(POOLS)
            .find_one(doc! { "_id": &self.pool })
            .run()
            .map_err(err)?
            .and_then(|d| int(d.get("max_attempts")))
            .unwrap_or(i64::from(DEFAULT_MAX_ATTEMPTS)))
    }

    /// The filter for a write by `token`'s holder (or by anyone without a token).
    fn fenced(&self, id: &str, token: Option<&str>) -> Result<Document> {
        let oid = self.oid(id)?;
        Ok(match token {
            Some(t) => doc! { "_id": oid, "status": "running", "lease_token": t },
            None => doc! { "_id": oid },
        })
    }

    fn miss(&self, id: &str) -> PoolError {
        let Ok(oid) = ObjectId::parse_str(id) else {
            return self.not_found(id);
        };
        match self.coll.find_one(doc! { "_id": oid }).run() {
            Ok(Some(_)) => PoolError::LeaseLost { id: id.to_string() },
            Ok(None) => self.not_found(id),
            Err(e) => err(e),
        }
    }

    fn lease_expiry(lease: Option<Duration>) -> Bson {
        match lease {
            Some(l) => Bson::Document(doc! { "$add": ["$$NOW", l.as_millis() as i64] }),
            None => Bson::Null,
        }
    }
}

impl TaskPool for MongoPool {
    fn name(&self) -> &str {
        &self.pool
    }

    fn create_tasks(&self, defs: &[Value], opts: &CreateOptions) -> Result<Vec<Created>> {
        let hashes = check_defs(defs)?;
        let mut out: Vec<Created> = Vec::with_capacity(defs.len());
        let mut seen = std::collections::HashMap::new();
        for (def, hash) in defs.iter().zip(&hashes) {
            if let Some(&first) = seen.get(hash.as_str()) {
                let earlier: &Created = &out[first];
                out.push(Created {
                    id: earlier.id.clone(),
                    new: false,
                });
                continue;
            }
            seen.insert(hash.as_str(), out.len());
            let find = || -> Result<Option<String>> {
                Ok(self
                    .coll
                    .find_one(doc! { "def_hash": hash })
                    .run()
                    .map_err(err)?
                    .and_then(|d| d.get_object_id("_id").ok().map(|o| o.to_hex())))
            };
            if let Some(id) = find()? {
                out.push(Created {
                    id: Some(id),
                    new: false,
                });
                continue;
            }
            if opts.dry_run {
                out.push(Created {
                    id: None,
                    new: true,
                });
                continue;
            }
            let mut d = doc! {
                "def": to_bson(def)?,
                "def_hash": hash,
                "status": "waiting",
                "priority": Bson::Null,
                "res": Bson::Null,
                "attempts": 0i64,
                "error": Bson::Null,
                "created_at": mongodb::bson::DateTime::now(),
                "started_at": Bson::Null,
                "finished_at": Bson::Null,
            };
            d.extend(cleared());
            if let Some(m) = opts.max_attempts {
                d.insert("max_attempts", i64::from(m));
            }
            match self.coll.insert_one(d).run() {
                Ok(r) => out.push(Created {
                    id: r.inserted_id.as_object_id().map(|o| o.to_hex()),
                    new: true,
                }),
                // Another process inserted it first: reuse its id.
                Err(e) if is_duplicate(&e) => out.push(Created {
                    id: find()?,
                    new: false,
                }),
                Err(e) => return Err(err(e)),
            }
        }
        Ok(out)
    }

    fn fetch_task(&self, opts: &FetchOptions) -> Result<Option<ClaimedTask>> {
        let pool_max = self.pool_max_attempts()?;
        let expired = doc! {
            "status": "running",
            "lease_expires_at": { "$type": "date" },
            "$expr": { "$lt": ["$lease_expires_at", "$$NOW"] },
        };
        let mut failed = cleared();
        failed.insert("status", "failed");
        failed.insert("finished_at", "$$NOW");
        failed.insert(
            "error",
            doc! { "$concat": ["lease expired (held by ", { "$ifNull": ["$lease_owner", "?"] }, ") on its last attempt"] },
        );
        self.coll
            .update_many(
                and(
                    expired.clone(),
                    doc! { "$expr": { "$gte": ["$attempts", { "$ifNull": ["$max_attempts", pool_max] }] } },
                ),
                vec![doc! { "$set": failed }],
            )
            .run()
            .map_err(err)?;

        let q = filter(&opts.query.without_status())?;
        let token = uuid::Uuid::new_v4().simple().to_string();
        let from = opts.status.as_str();
        for reclaim in [true, false] {
            let which = if reclaim {
                let mut e = expired.clone();
                e.insert("claimed_from", from);
                e
            } else {
                doc! { "status": from }
            };
            let error = if reclaim {
                Bson::Document(
                    doc! { "$concat": ["lease expired (held by ", { "$ifNull": ["$lease_owner", "?"] }, ")"] },
                )
            } else {
                Bson::String("$error".into())
            };
            let set = doc! {
                "status": "running",
                "claimed_from": lit(from.into()),
                "attempts": { "$add": [{ "$ifNull": ["$attempts", 0] }, 1] },
                "lease_owner": lit(opts.owner.clone().into()),
                "lease_token": lit(token.clone().into()),
                "lease_expires_at": Self::lease_expiry(opts.lease),
                "started_at": "$$NOW",
                "error": error,
            };
            let got = self
                .coll
                .find_one_and_update(and(which, q.clone()), vec![doc! { "$set": set }])
                .sort(doc! { "priority": -1, "_id": 1 })
                .return_document(ReturnDocument::After)
                .run()
                .map_err(err)?;
            if let Some(d) = got {
                return Ok(Some(ClaimedTask {
                    task: read_task(&d)?,
                    token,
                    from: opts.status,
                }));
            }
        }
        Ok(None)
    }

    fn heartbeat(&self, id: &str, token: &str, lease: Duration) -> Result<()> {
        let r = self
            .coll
            .update_one(
                self.fenced(id, Some(token))?,
                vec![doc! { "$set": { "lease_expires_at": Self::lease_expiry(Some(lease)) } }],
            )
            .run()
            .map_err(err)?;
        if r.matched_count == 0 {
            return Err(self.miss(id));
        }
        Ok(())
    }

    fn commit_task_res(
        &self,
        id: &str,
        token: Option<&str>,
        res: &Value,
        status: Option<Status>,
    ) -> Result<()> {
        let status = status.unwrap_or(Status::Done);
        let mut set = cleared();
        set.insert("res", lit(to_bson(res)?));
        set.insert("status", status.as_str());
        if status.is_finished() {
            set.insert("finished_at", "$$NOW");
        }
        let r = self
            .coll
            .update_one(self.fenced(id, token)?, vec![doc! { "$set": set }])
            .run()
            .map_err(err)?;
        if r.matched_count == 0 {
            return Err(self.miss(id));
        }
        Ok(())
    }

    fn return_task(&self, id: &str, token: Option<&str>, status: Option<Status>) -> Result<()> {
        let mut set = cleared();
        let back = doc! { "$cond": [{ "$eq": ["$status", "running"] }, { "$ifNull": ["$claimed_from", "waiting"] }, "waiting"] };
        set.insert(
            "status",
            status.map_or(Bson::Document(back), |s| Bson::String(s.as_str().into())),
        );
        if token.is_some() {
            set.insert(
                "attempts",
                doc! { "$max": [{ "$subtract": ["$attempts", 1] }, 0] },
            );
        }
        let r = self
            .coll
            .update_one(self.fenced(id, token)?, vec![doc! { "$set": set }])
            .run()
            .map_err(err)?;
        if r.matched_count == 0 {
            return Err(self.miss(id));
        }
        Ok(())
    }

    fn fail_task(&self, id: &str, token: &str, error: &str) -> Result<Status> {
        let pool_max = self.pool_max_attempts()?;
        let exhausted = doc! { "$gte": ["$attempts", { "$ifNull": ["$max_attempts", pool_max] }] };
        let mut set = cleared();
        set.insert(
            "status",
            doc! { "$cond": [exhausted.clone(), "failed", "$claimed_from"] },
        );
        set.insert(
            "finished_at",
            doc! { "$cond": [exhausted, "$$NOW", "$finished_at"] },
        );
        set.insert("error", lit(error.into()));
        let d = self
            .coll
            .find_one_and_update(self.fenced(id, Some(token))?, vec![doc! { "$set": set }])
            .return_document(ReturnDocument::After)
            .run()
            .map_err(err)?;
        match d {
            Some(d) => string(&d, "status").unwrap_or_default().parse(),
            None => Err(self.miss(id)),
        }
    }

    fn query(&self, query: &Query) -> Result<Vec<Task>> {
        let cursor = self
            .coll
            .find(filter(query)?)
            .sort(doc! { "_id": 1 })
            .run()
            .map_err(err)?;
        cursor.map(|d| read_task(&d.map_err(err)?)).collect()
    }

    fn re_query(&self, id: &str) -> Result<Task> {
        let oid = self.oid(id)?;
        match self.coll.find_one(doc! { "_id": oid }).run().map_err(err)? {
            Some(d) => read_task(&d),
            None => Err(self.not_found(id)),
        }
    }

    fn task_stat(&self, query: &Query) -> Result<TaskStat> {
        let cursor = self
            .coll
            .aggregate(vec![
                doc! { "$match": filter(query)? },
                doc! { "$group": { "_id": "$status", "n": { "$sum": 1 } } },
            ])
            .run()
            .map_err(err)?;
        let mut stat = TaskStat::new();
        for d in cursor {
            let d = d.map_err(err)?;
            let status: Status = string(&d, "_id").unwrap_or_default().parse()?;
            stat.insert(status, int(d.get("n")).unwrap_or(0) as u64);
        }
        Ok(stat)
    }

    fn reset_status(&self, query: &Query, status: Status) -> Result<u64> {
        let mut set = cleared();
        set.insert("status", status.as_str());
        let r = self
            .coll
            .update_many(filter(query)?, doc! { "$set": set })
            .run()
            .map_err(err)?;
        Ok(r.modified_count)
    }

    fn prioritize(&self, id: &str, priority: Option<i64>) -> Result<()> {
        let r = self
            .coll
            .update_one(
                doc! { "_id": self.oid(id)? },
                doc! { "$set": { "priority": priority } },
            )
            .run()
            .map_err(err)?;
        if r.matched_count == 0 {
            return Err(self.not_found(id));
        }
        Ok(())
    }

    fn remove(&self, query: &Query) -> Result<u64> {
        Ok(self
            .coll
            .delete_many(filter(query)?)
            .run()
            .map_err(err)?
            .deleted_count)
    }

    fn retry(&self, query: &Query) -> Result<u64> {
        let r = self
            .coll
            .update_many(
                filter(&query.with_status(Status::Failed))?,
                doc! { "$set": { "status": "waiting", "attempts": 0i64, "finished_at": Bson::Null } },
            )
            .run()
            .map_err(err)?;
        Ok(r.modified_count)
    }

    fn replace_task(&self, id: &str, def: &Value) -> Result<()> {
        let hash = check_defs(std::slice::from_ref(def))?.remove(0);
        let oid = self.oid(id)?;
        if let Some(other) = self
            .coll
            .find_one(doc! { "def_hash": &hash, "_id": { "$ne": oid } })
            .run()
            .map_err(err)?
        {
            let other = other
                .get_object_id("_id")
                .map(|o| o.to_hex())
                .unwrap_or_default();
            return Err(PoolError::Invalid(format!(
                "task {other} of pool {:?} already has this definition",
                self.pool
            )));
        }
        let r = self
            .coll
            .update_one(
                doc! { "_id": oid },
                doc! { "$set": { "def": to_bson(def)?, "def_hash": hash } },
            )
            .run()
            .map_err(err)?;
        if r.matched_count == 0 {
            return Err(self.not_found(id));
        }
        Ok(())
    }

    fn set_max_attempts(&self, max_attempts: Option<u32>) -> Result<()> {
        self.db
            .collection::<Document>(POOLS)
            .update_one(
                doc! { "_id": &self.pool },
                doc! { "$set": { "max_attempts": max_attempts.map(i64::from) } },
            )
            .upsert(true)
            .run()
            .map_err(err)?;
        Ok(())
    }

    fn list(&self) -> Result<Vec<String>> {
        let mut names: Vec<String> = self
            .db
            .list_collection_names()
            .run()
            .map_err(err)?
            .into_iter()
            .filter(|n| n != META && n != POOLS)
            .collect();
        // Qlib lists collections; an emptied pool is still one there, but not here.
        names.retain(|n| {
            self.db
                .collection::<Document>(n)
                .find_one(doc! {})
                .run()
                .ok()
                .flatten()
                .is_some()
        });
        names.sort();
        Ok(names)
    }
}
