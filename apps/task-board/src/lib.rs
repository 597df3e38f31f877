//! A team task board: nested collections, counters, a set, a read-only view,
//! node-local private storage and blobs (a task's attachment).
//!
//! Tasks live in a map of maps (task id -> field -> value); columns are a map
//! of vectors (column -> task ids in the order they arrived).
//!
//! `on_task_added` handles the board's own `TaskAdded` events: every node
//! that receives a new task acknowledges it (idempotently, since a handler
//! may run more than once).

use std::collections::BTreeMap;

use mero_sdk::app;
use mero_sdk::blobs::{self, BlobId};
use mero_sdk::collections::{Counter, LwwRegister, UnorderedMap, UnorderedSet, Vector};
use mero_sdk::{env, private};
use serde::Serialize;

#[app::state(version = 1)]
pub struct TaskBoard {
    title: LwwRegister<String>,
    tasks: UnorderedMap<String, UnorderedMap<String, LwwRegister<String>>>,
    columns: UnorderedMap<String, Vector<String>>,
    labels: UnorderedSet<String>,
    created: Counter,
    completed: Counter,
    acks: UnorderedSet<String>,
}

#[app::event]
pub enum Event<'a> {
    TaskAdded {
        id: &'a str,
        column: &'a str,
    },
    TaskMoved {
        id: &'a str,
        from: &'a str,
        to: &'a str,
    },
    TaskCompleted {
        id: &'a str,
    },
}

#[derive(Serialize)]
pub struct Task {
    pub id: String,
    pub fields: BTreeMap<String, String>,
}

#[derive(Serialize)]
pub struct Board {
    pub title: Option<String>,
    pub columns: BTreeMap<String, Vec<Task>>,
    pub labels: Vec<String>,
}

#[derive(Serialize)]
pub struct Stats {
    pub created: i64,
    pub completed: i64,
    pub open: i64,
    pub tasks: u64,
}

/// A chain account the caller proved it holds (issue #23).
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ChainAccount {
    pub chain: String,
    pub account: String,
    pub verified_on_chain: bool,
}

/// An attestation about one of the caller's chain accounts (issue #23).
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ChainAttestation {
    pub chain: String,
    pub network: String,
    pub block_number: u64,
    pub kind: String,
    pub account: String,
    pub token: Option<String>,
    pub at_least: Option<String>,
    pub observed: String,
    pub holds: bool,
    pub attested_by: String,
}

/// A task's attachment, read from its blob.
#[derive(Serialize)]
pub struct Attachment {
    pub blob: BlobId,
    pub size: u64,
    /// The blob's bytes as text (invalid UTF-8 replaced).
    pub text: String,
}

fn column_of(board: &TaskBoard, id: &str) -> app::Result<Option<String>> {
    match board.tasks.get(id)? {
        Some(task) => task.get_value("column"),
        None => Ok(None),
    }
}

fn remove_from_column(board: &mut TaskBoard, column: &str, id: &str) -> app::Result<()> {
    if let Some(mut col) = board.columns.get(column)?
        && let Some(pos) = col.iter()?.iter().position(|t| t == id)
    {
        col.remove(pos as u64)?;
    }
    Ok(())
}

#[app::logic]
impl TaskBoard {
    #[app::init]
    pub fn init(title: String) -> app::Result<TaskBoard> {
        if title.trim().is_empty() {
            app::bail!("a board needs a title");
        }
        let mut labels = UnorderedSet::new();
        labels.insert("bug".to_string())?;
        Ok(TaskBoard {
            title: LwwRegister::new(title),
            tasks: UnorderedMap::new(),
            columns: UnorderedMap::new(),
            labels,
            created: Counter::new(),
            completed: Counter::new(),
            acks: UnorderedSet::new(),
        })
    }

    /// Adds a task to a column.
    pub fn add_task(&mut self, id: String, title: String, column: String) -> app::Result<()> {
        if self.tasks.contains(&id)? {
            app::bail!("task {id} already exists");
        }
        let mut task = self.tasks.entry(id.clone())?;
        task.insert_value("title".into(), title)?;
        task.insert_value("column".into(), column.clone())?;
        task.insert_value("author".into(), hex(&env::executor_id()))?;
        self.columns.entry(column.clone())?.push(id.clone())?;
        self.created.increment(1)?;
        app::emit!(Event::TaskAdded {
            id: &id,
            column: &column
        });
        Ok(())
    }

    /// Moves a task to another column.
    pub fn move_task(&mut self, id: String, to: String) -> app::Result<()> {
        let Some(from) = column_of(self, &id)? else {
            app::bail!("no task {id}")
        };
        if from == to {
            return Ok(());
        }
        remove_from_column(self, &from, &id)?;
        self.columns.entry(to.clone())?.push(id.clone())?;
        if let Some(mut task) = self.tasks.get(&id)? {
            task.insert_value("column".into(), to.clone())?;
        }
        app::emit!(Event::TaskMoved {
            id: &id,
            from: &from,
            to: &to
        });
        Ok(())
    }

    /// Sets who a task is assigned to.
    pub fn assign(&mut self, id: String, assignee: String) -> app::Result<()> {
        let Some(mut task) = self.tasks.get(&id)? else {
            app::bail!("no task {id}")
        };
        task.insert_value("assignee".into(), assignee)?;
        Ok(())
    }

    /// Marks a task done: moves it to `done` and counts it.
    pub fn complete(&mut self, id: String) -> app::Result<i64> {
        self.move_task(id.clone(), "done".into())?;
        app::emit!(Event::TaskCompleted { id: &id });
        self.completed.increment(1)
    }

    /// Deletes a task everywhere.
    pub fn delete_task(&mut self, id: String) -> app::Result<bool> {
        let Some(column) = column_of(self, &id)? else {
            return Ok(false);
        };
        remove_from_column(self, &column, &id)?;
        self.tasks.remove(&id)?;
        self.created.decrement(1)?;
        Ok(true)
    }

    /// Adds a label.
    pub fn add_label(&mut self, label: String) -> app::Result<bool> {
        self.labels.insert(label)
    }

    /// Removes a label.
    pub fn remove_label(&mut self, label: String) -> app::Result<bool> {
        self.labels.remove(&label)
    }

    /// Handler of `TaskAdded`, run by the nodes that receive the event: this
    /// node acknowledges the task. A set makes running it twice harmless.
    pub fn on_task_added(&mut self, id: String, column: String) -> app::Result<bool> {
        let _ = column;
        self.acks
            .insert(format!("{id}@{}", hex(&env::executor_id())))
    }

    /// Acknowledgements: `task@node` for each node that received each task.
    pub fn acknowledgements(&self) -> app::Result<Vec<String>> {
        self.acks.iter()
    }

    /// Renames the board.
    pub fn rename(&mut self, title: String) -> app::Result<()> {
        self.title.set(title)
    }

    /// The whole board, column by column.
    #[app::view]
    pub fn board(&self) -> app::Result<Board> {
        let mut columns = BTreeMap::new();
        for (name, ids) in self.columns.entries()? {
            let mut tasks = Vec::new();
            for id in ids.iter()? {
                let fields = match self.tasks.get(&id)? {
                    Some(t) => t.values()?.into_iter().collect(),
                    None => BTreeMap::new(),
                };
                tasks.push(Task { id, fields });
            }
            columns.insert(name, tasks);
        }
        Ok(Board {
            title: self.title.get()?,
            columns,
            labels: self.labels.iter()?,
        })
    }

    /// Counts.
    #[app::view]
    pub fn stats(&self) -> app::Result<Stats> {
        let created = self.created.value()?;
        let completed = self.completed.value()?;
        Ok(Stats {
            created,
            completed,
            open: created - completed,
            tasks: self.tasks.len()?,
        })
    }

    /// The chain accounts (NEAR, Ethereum, ICP, Stellar) the caller proved
    /// it holds in the board's namespace: what a board could gate
    /// assignment or payouts on.
    #[app::view]
    pub fn my_chain_accounts(&self) -> app::Result<Vec<ChainAccount>> {
        Ok(env::chain_identities()
            .into_iter()
            .map(|i| ChainAccount {
                chain: i.chain,
                account: i.account,
                verified_on_chain: i.verified_on_chain,
            })
            .collect())
    }

    /// What members' nodes attested about the caller's chain accounts
    /// (e.g. the token balance it was admitted on): what a board could
    /// gate payouts on.
    #[app::view]
    pub fn my_chain_attestations(&self) -> app::Result<Vec<ChainAttestation>> {
        Ok(env::chain_attestations()
            .into_iter()
            .map(|a| ChainAttestation {
                chain: a.chain,
                network: a.network,
                block_number: a.block_number,
                kind: a.kind,
                account: a.account,
                token: a.token,
                at_least: a.at_least,
                observed: a.observed,
                holds: a.holds,
                attested_by: a.attested_by.iter().map(|b| format!("{b:02x}")).collect(),
            })
            .collect())
    }

    /// Saves a draft on this node only (private storage).
    pub fn save_draft(&mut self, text: String) -> app::Result<()> {
        private::set("draft", &text)
    }

    /// This node's draft.
    pub fn draft(&self) -> app::Result<Option<String>> {
        private::get("draft")
    }

    /// Attaches blob `blob` to a task: the id `PUT /admin-api/blobs`
    /// answered (upload it with the context's id so members can fetch it).
    /// Only the id enters the state.
    pub fn attach(&mut self, id: String, blob: BlobId) -> app::Result<()> {
        let Some(mut task) = self.tasks.get(&id)? else {
            app::bail!("no task {id}")
        };
        task.insert_value("attachment".into(), blob.to_string())?;
        Ok(())
    }

    /// Makes a blob of `text` on this node and attaches it to a task.
    pub fn attach_text(&mut self, id: String, text: String) -> app::Result<BlobId> {
        let blob = blobs::create(text.as_bytes())?;
        self.attach(id, blob)?;
        Ok(blob)
    }

    /// A task's attachment with its size and content, read from its blob
    /// (fetched from a member if this node lacks it); null if the task has
    /// none, an error if no member has the blob.
    pub fn attachment(&self, id: String) -> app::Result<Option<Attachment>> {
        let Some(task) = self.tasks.get(&id)? else {
            app::bail!("no task {id}")
        };
        let Some(blob) = task.get_value("attachment")? else {
            return Ok(None);
        };
        let blob: BlobId = blob.parse().map_err(|e| app::Error::msg(format!("{e}")))?;
        let (Some(size), Some(bytes)) = (blobs::size(&blob)?, blobs::read_all(&blob)?) else {
            app::bail!("blob {blob} is on no member of the context")
        };
        Ok(Some(Attachment {
            blob,
            size,
            text: String::from_utf8_lossy(&bytes).into_owned(),
        }))
    }

    /// Up to `len` bytes of any blob from `offset` (one host read; null if
    /// no member has it).
    pub fn read_blob(&self, blob: BlobId, offset: u64, len: u32) -> app::Result<Option<Vec<u8>>> {
        blobs::read(&blob, offset, len)
    }

    /// The size of any blob (null if no member has it).
    pub fn blob_size(&self, blob: BlobId) -> app::Result<Option<u64>> {
        blobs::size(&blob)
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
