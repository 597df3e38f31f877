//! Namespace governance: who is in a namespace and which contexts it has,
//! as a log of signed ops replicated to every member node.
//!
//! Ops form a DAG (each names the heads its author had seen) and are applied
//! in causal order: an op waits until its parents are applied. Every node
//! that has the same ops therefore computes the same membership. Each op is
//! checked against the state at its causal position: a join must carry a
//! valid invitation from a member allowed to invite, a context can only be
//! registered by a member allowed to create contexts.
//!
//! Layout: this file holds the ops and the fold ([`Namespace`]);
//! [`rights`] the role type and capability bits; [`group_keys`] which key
//! seals a group's gossip and what keeping it takes; [`invitation`] the signed
//! invitations a join presents; [`digest`] the hashing of encodings that ids
//! are made of. Nothing here does I/O or knows the node: the tests at the
//! end of this file check the fold's order independence.

pub mod digest;
pub mod group_keys;
pub mod invitation;
pub mod metadata;
pub mod rights;

use std::borrow::Cow;
use std::cmp::Reverse;
use std::collections::{BTreeMap, BTreeSet, BinaryHeap, HashMap, HashSet};

use borsh::{BorshDeserialize, BorshSerialize};
use ed25519_dalek::{Signature, Signer, SigningKey, Verifier, VerifyingKey};
use sha2::{Digest, Sha256};

pub use self::digest::EncodeError;
use self::digest::digest;
pub use self::group_keys::{GroupKey, KeyWork};
use self::invitation::{ChainProof, SignedInvitation, WithConditions};
pub use self::rights::{Role, caps};

/// An op id: SHA-256 of the op's Borsh encoding.
pub type OpId = [u8; 32];

/// The application a namespace runs, enough to install it from a peer.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct AppInfo {
    /// Application id.
    pub id: [u8; 32],
    /// Component content hash.
    pub blob: [u8; 32],
    /// Component size.
    pub size: u64,
    /// Package name.
    pub package: String,
    /// Version.
    pub version: String,
    /// Where it was installed from on the creator's node.
    pub source: String,
}

/// One context's DAG heads, as a node held them.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct ContextHeads {
    /// The context.
    pub context: [u8; 32],
    /// Its heads (delta ids).
    pub heads: Vec<[u8; 32]>,
}

/// A member's removal, or its demotion to read-only, as folded.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Removal {
    /// The op that removed it (or made it read-only).
    pub op: OpId,
    /// Made read-only, not removed: a role that writes given back ends it
    /// for the deltas that know of it ([`Removal::promoted`]).
    pub demoted: bool,
    /// The op that gave a demoted member a role that writes again: its
    /// deltas naming governance that knows of it are judged by that
    /// governance alone; those naming older governance (signed while it was
    /// read-only, citing its view from before) stay held to the frontier,
    /// as every node that judged them before the promotion held them.
    pub promoted: Option<OpId>,
    /// Who removed it (the member itself, if it left).
    pub by: [u8; 32],
    /// By context: the DAG heads the remover's node held, or, for a context
    /// it did not hold, those a [`Body::FrontierNamed`] named. A context
    /// with neither has no entry; there the governance a delta names
    /// decides alone.
    pub frontier: BTreeMap<[u8; 32], BTreeSet<[u8; 32]>>,
    /// The contexts whose frontier a [`Body::FrontierNamed`] named: its
    /// author and op.
    pub named: BTreeMap<[u8; 32], ([u8; 32], OpId)>,
}

impl Removal {
    /// Whose state is the reference in `ctx`: the node that named its
    /// frontier there.
    pub fn source(&self, ctx: &[u8; 32]) -> [u8; 32] {
        self.named.get(ctx).map_or(self.by, |(by, _)| *by)
    }

    /// The ops a replica must know to judge the member's deltas in `ctx`
    /// as this removal does.
    pub fn ops(&self, ctx: &[u8; 32]) -> impl Iterator<Item = OpId> + '_ {
        std::iter::once(self.op).chain(self.named.get(ctx).map(|(_, op)| *op))
    }
}

/// What an op does.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub enum Body {
    /// The root op: the namespace's id is SHA-256 of the creator's key and
    /// `nonce`, so nobody else can create "the same" namespace.
    Create {
        /// Random.
        nonce: [u8; 32],
        /// A human name.
        name: Option<String>,
        /// Its application.
        app: AppInfo,
        /// Capabilities members get by default.
        default_capabilities: u32,
        /// Where the creator listens.
        addrs: Vec<String>,
    },
    /// A member admitted `member`, who presented `invitation` (checked by
    /// the admitting member against its own clock, and proven to hold the
    /// key it joins with).
    MemberJoined {
        /// The new member's key.
        member: [u8; 32],
        /// The invitation it used.
        invitation: SignedInvitation,
        /// Where the new member listens.
        addrs: Vec<String>,
    },
    /// The author created a context in a group of the namespace (the
    /// namespace itself is the root group). Registered before the
    /// context's first delta, which names it.
    ContextRegistered {
        /// The context: [`scoped_id`] of the namespace, the author and
        /// `salt`, so nobody can register another member's context.
        context: [u8; 32],
        /// A human name.
        name: Option<String>,
        /// Its group.
        group: [u8; 32],
        /// Random (or from a seed).
        salt: [u8; 32],
    },
    /// A context whose creation failed is withdrawn.
    ContextDetached {
        /// The context.
        context: [u8; 32],
    },
    /// A subgroup of `parent` (the namespace or another subgroup).
    GroupCreated {
        /// Its id: [`scoped_id`] of the namespace, the author and `salt`.
        group: [u8; 32],
        /// Random.
        salt: [u8; 32],
        /// Its parent.
        parent: [u8; 32],
        /// A human name.
        name: Option<String>,
        /// Open: members of the parent that hold JOIN_OPEN_SUBGROUPS are
        /// members; restricted: only those admitted.
        open: bool,
    },
    /// A subgroup's visibility changes.
    GroupVisibilitySet {
        /// The subgroup.
        group: [u8; 32],
        /// Open or restricted.
        open: bool,
    },
    /// A namespace member is admitted to a subgroup.
    GroupMemberAdded {
        /// The subgroup.
        group: [u8; 32],
        /// The member.
        member: [u8; 32],
    },
    /// A member's admission to a subgroup is withdrawn.
    GroupMemberRemoved {
        /// The subgroup.
        group: [u8; 32],
        /// The member.
        member: [u8; 32],
    },
    /// A member's role changes.
    RoleSet {
        /// The member.
        member: [u8; 32],
        /// The new role.
        role: Role,
    },
    /// A member's capability mask is set (absolute, not added to).
    CapabilitiesSet {
        /// The member.
        member: [u8; 32],
        /// The whole mask.
        capabilities: u32,
    },
    /// A member is removed; what it authored before stays.
    MemberRemoved {
        /// The member.
        member: [u8; 32],
        /// The member's accepted frontier: for each context the author's
        /// node held, its DAG heads when the removal was made. The
        /// member's deltas outside their causal past are refused from then
        /// on, whatever governance they name (see
        /// [`Namespace::removals`]).
        frontier: Vec<ContextHeads>,
    },
    /// A group's, a member's or a context's metadata record is replaced
    /// (see [`metadata`]).
    MetadataSet {
        /// The group (the namespace id for the root group).
        group: [u8; 32],
        /// What the record is attached to.
        target: metadata::Target,
        /// Its display name; `None` unsets it.
        name: Option<String>,
        /// Its properties, replacing the previous ones.
        data: BTreeMap<String, String>,
    },
    /// The namespace key of `epoch`, wrapped for some members (a new
    /// member, or everyone left after a removal: then `epoch` is new).
    KeyShared {
        /// Which key.
        epoch: u32,
        /// The key, wrapped for each member it is for.
        wrapped: Vec<crate::keys::Wrapped>,
    },
    /// An admin moved a group's contexts to another version of their app,
    /// after migrating and checking them on its own node.
    GroupUpgraded {
        /// The group (the namespace id for the root group).
        group: [u8; 32],
        /// What it moves to and how.
        plan: Box<UpgradePlan>,
    },
    /// Whether `member` follows the contexts (and subgroups) of `group`:
    /// its node joins them on its own as they are registered. Set by the
    /// member itself or an admin (upstream's `MemberSetAutoFollow`).
    AutoFollowSet {
        /// The group (the namespace id for the root group).
        group: [u8; 32],
        /// The member.
        member: [u8; 32],
        /// Follow the group's contexts.
        contexts: bool,
        /// Follow its subgroups (recorded; subgroups need an admission).
        subgroups: bool,
    },
    /// An admin ordered `root` and every group below it that runs the same
    /// application moved to `target`. Each group commits with its own
    /// `GroupUpgraded`, in `groups`' order, as the ordering admin's node
    /// migrates it; until then it is pending, and an abort leaves it be.
    CascadeStarted {
        /// Where it starts (the namespace id for the root group).
        root: [u8; 32],
        /// The application it moves them to.
        target: AppInfo,
        /// The state versions it moves them from and to.
        state_versions: (u32, u32),
        /// The groups it covers, root first, parents before children.
        groups: Vec<[u8; 32]>,
    },
    /// An admin stopped the cascade started at `root`: its groups not yet
    /// committed stay on their application on every node.
    CascadeAborted {
        /// Where the cascade started.
        root: [u8; 32],
    },
    /// The author proved it holds a chain account (NEAR, Ethereum, ICP or
    /// Stellar) by signing `challenge` with the account's key; every node
    /// verifies the signature (see [`crate::chains`]).
    ChainIdentityProven {
        /// What was signed: this namespace (or one of its contexts), the
        /// author, the account, a nonce used once, an expiry.
        challenge: mero_chains::Challenge,
        /// The signature and, where the account does not give it, the key.
        proof: mero_chains::Proof,
    },
    /// The chain protocol the namespace or one of its contexts is
    /// associated with (the seed's "Multi-Chain Integration"); set once,
    /// by its creator (or an admin), when it is created.
    ProtocolSet {
        /// The namespace id, or a context's.
        target: [u8; 32],
        /// NEAR, Ethereum, ICP or Stellar.
        protocol: mero_chains::Chain,
    },
    /// [`Body::MemberJoined`] with an invitation that sets conditions (a
    /// chain account the joiner must hold) and the joiner's proofs meeting
    /// them, checked by every node. A variant of its own so that
    /// `MemberJoined`'s encoding, and the logs stored in it, stay as they
    /// were.
    MemberJoinedWithProofs {
        /// The new member's key.
        member: [u8; 32],
        /// The invitation it used, with its conditions.
        invitation: WithConditions,
        /// One proof per chain-account condition.
        proofs: Vec<ChainProof>,
        /// Where the new member listens.
        addrs: Vec<String>,
    },
    /// The author's node attests what a chain said (signed by it; see
    /// [`crate::relayer::gate`]): recorded before a join it admits on a
    /// token balance, so every node sees why.
    ChainAttested {
        /// The claim and its signature.
        attestation: crate::relayer::attestation::Attestation,
    },
    /// A restricted subgroup's key of `epoch`, wrapped for some of its
    /// members (see [`group_keys`]): a new member, or every member after
    /// one that held it left (then `epoch` is new).
    GroupKeyShared {
        /// The subgroup.
        group: [u8; 32],
        /// Which key.
        epoch: u32,
        /// The key, wrapped for each member it is for.
        wrapped: Vec<crate::keys::Wrapped>,
    },
    /// A member is made read-only ([`Body::RoleSet`] to
    /// [`Role::ReadOnly`]), naming its accepted frontier as a removal
    /// does: of its deltas, only those in the frontier's causal past are
    /// taken from then on, whatever governance they name, but for those
    /// naming governance that knows of a role that writes given back since
    /// (see [`Namespace::removals`]).
    MadeReadOnly {
        /// The member.
        member: [u8; 32],
        /// For each context the author's node held, its DAG heads when
        /// the demotion was made.
        frontier: Vec<ContextHeads>,
    },
    /// A removed or demoted member's accepted frontier in contexts its
    /// remover's node did not hold, named by a member manager that holds
    /// them when it hears of the removal (the first such op in fold order
    /// for a context is the one kept).
    FrontierNamed {
        /// The member.
        member: [u8; 32],
        /// For each such context the author's node holds, its DAG heads.
        frontier: Vec<ContextHeads>,
    },
}

/// A join, whichever op carries it.
pub struct Join<'a> {
    /// The new member's key.
    pub member: &'a [u8; 32],
    /// The invitation it used (with its conditions, if any).
    pub invitation: &'a SignedInvitation,
    /// Its proofs of the invitation's conditions.
    pub proofs: &'a [ChainProof],
    /// Where it listens.
    pub addrs: &'a [String],
}

impl Body {
    /// The join this op is, if it is one.
    pub fn join(&self) -> Option<Join<'_>> {
        match self {
            Body::MemberJoined {
                member,
                invitation,
                addrs,
            } => Some(Join {
                member,
                invitation,
                proofs: &[],
                addrs,
            }),
            Body::MemberJoinedWithProofs {
                member,
                invitation,
                proofs,
                addrs,
            } => Some(Join {
                member,
                invitation: &invitation.0,
                proofs,
                addrs,
            }),
            _ => None,
        }
    }

    /// A join request for `member` with `invitation` and, where it sets
    /// conditions, `proofs` of them.
    pub fn joining(
        member: [u8; 32],
        invitation: SignedInvitation,
        proofs: Vec<ChainProof>,
        addrs: Vec<String>,
    ) -> Body {
        if invitation.conditions.is_empty() && proofs.is_empty() {
            Body::MemberJoined {
                member,
                invitation,
                addrs,
            }
        } else {
            Body::MemberJoinedWithProofs {
                member,
                invitation: WithConditions(invitation),
                proofs,
                addrs,
            }
        }
    }
}

/// What a member follows in a group. Members follow contexts unless they
/// opt out, as upstream: joining a namespace means wanting its data.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AutoFollow {
    /// Join the group's contexts as they are registered.
    pub contexts: bool,
    /// Follow its subgroups.
    pub subgroups: bool,
}

impl Default for AutoFollow {
    fn default() -> Self {
        AutoFollow {
            contexts: true,
            subgroups: false,
        }
    }
}

/// A context as the member that ordered an upgrade had it when it migrated.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct UpgradedContext {
    /// The context.
    pub context: [u8; 32],
    /// Its DAG heads when it migrated: the cut the migration read.
    pub heads: Vec<[u8; 32]>,
    /// Its root hash after the migration; every node that migrates the
    /// same cut must compute the same.
    pub root: [u8; 32],
}

/// What an upgrade moves a group to, and how every node migrates alike.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct UpgradePlan {
    /// The application version the group's contexts move to.
    pub app: AppInfo,
    /// The version they ran, and its state version.
    pub from_version: String,
    /// The state version they leave.
    pub from_state_version: u32,
    /// The state version they reach (equal to `from_state_version` for a
    /// code-only upgrade).
    pub to_state_version: u32,
    /// The clock the migration's writes are stamped after (millis,
    /// counter), the same on every node.
    pub barrier: (u64, u32),
    /// Fuel each context's migration may burn, the same on every node.
    pub fuel: u64,
    /// The contexts as the ordering member migrated them.
    pub contexts: Vec<UpgradedContext>,
}

/// One governance op.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct Op {
    /// The namespace.
    pub namespace: [u8; 32],
    /// Who signs it.
    pub author: [u8; 32],
    /// The namespace's heads when it was made.
    pub parents: Vec<OpId>,
    /// Author's wall clock, Unix milliseconds.
    pub millis: u64,
    /// What it does.
    pub body: Body,
}

/// An op and its author's signature.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct SignedOp {
    /// The op.
    pub op: Op,
    /// Ed25519 over "mero.gov.v1" ++ the op id.
    pub signature: Vec<u8>,
}

const DOMAIN: &[u8] = b"mero.gov.v1";

impl Op {
    /// Its id: SHA-256 of its Borsh encoding.
    pub fn id(&self) -> Result<OpId, EncodeError> {
        digest("a governance op", &[], self)
    }
}

impl SignedOp {
    /// Signs `op`.
    pub fn sign(op: Op, key: &SigningKey) -> Result<SignedOp, EncodeError> {
        let msg = [DOMAIN, &op.id()?].concat();
        Ok(SignedOp {
            signature: key.sign(&msg).to_bytes().to_vec(),
            op,
        })
    }

    /// Checks the signature; returns the id.
    pub fn verify(&self) -> Result<OpId, String> {
        let id = self.op.id().map_err(|e| e.to_string())?;
        let key = VerifyingKey::from_bytes(&self.op.author).map_err(|e| e.to_string())?;
        let sig: [u8; 64] = self
            .signature
            .as_slice()
            .try_into()
            .map_err(|_| "bad signature length".to_string())?;
        key.verify(&[DOMAIN, &id].concat(), &Signature::from_bytes(&sig))
            .map_err(|_| "bad signature".to_string())?;
        Ok(id)
    }
}

/// The namespace id a `Create` op gives: a digest of everything in the op
/// (its random nonce included) but the id itself, so no second, different
/// `Create` can claim the same namespace.
pub fn namespace_id(
    creator: &[u8; 32],
    millis: u64,
    create: &Body,
) -> Result<[u8; 32], EncodeError> {
    digest(
        "a Create op",
        &[b"mero.namespace.v2", creator, &millis.to_le_bytes()],
        create,
    )
}

/// The id of a context or subgroup `author` makes in namespace `ns`: bound
/// to both, so no other member (or namespace) can claim it.
pub fn scoped_id(ns: &[u8; 32], author: &[u8; 32], salt: &[u8; 32]) -> [u8; 32] {
    Sha256::digest([b"mero.scoped".as_slice(), ns, author, salt].concat()).into()
}

/// A member as governance knows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Member {
    /// Its role.
    pub role: Role,
    /// Its capability mask, if set apart from the default.
    pub capabilities: Option<u32>,
    /// Where it listens.
    pub addrs: Vec<String>,
    /// When it joined, Unix milliseconds.
    pub joined_millis: u64,
}

/// A context registered in the namespace.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Registered {
    /// A human name.
    pub name: Option<String>,
    /// Its group (the namespace id for the root group).
    pub group: [u8; 32],
    /// Who created it.
    pub creator: [u8; 32],
    /// When, Unix milliseconds.
    pub millis: u64,
}

/// A group's last upgrade, as every member folds it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UpgradeRecord {
    /// What it moved to and how.
    pub plan: UpgradePlan,
    /// The admin that ordered it.
    pub initiated_by: [u8; 32],
    /// When, Unix milliseconds (the admin's clock).
    pub initiated_millis: u64,
}

/// A cascade of upgrades through a subtree, as every member folds it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Cascade {
    /// The application it moves the groups to.
    pub target: AppInfo,
    /// The state versions it moves them from and to.
    pub state_versions: (u32, u32),
    /// The groups it covers, in the order they commit.
    pub groups: Vec<[u8; 32]>,
    /// The admin that ordered it.
    pub initiated_by: [u8; 32],
    /// When, Unix milliseconds (the admin's clock).
    pub initiated_millis: u64,
    /// Who aborted it and when (Unix milliseconds), if someone did.
    pub aborted: Option<([u8; 32], u64)>,
}

/// A subgroup of the namespace.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Group {
    /// Its parent group (the namespace id for a top-level subgroup).
    pub parent: [u8; 32],
    /// A human name.
    pub name: Option<String>,
    /// Open (inherits the parent's members) or restricted.
    pub open: bool,
    /// Who created it.
    pub creator: [u8; 32],
    /// When, Unix milliseconds.
    pub millis: u64,
    /// Members admitted explicitly.
    pub admitted: BTreeSet<[u8; 32]>,
}

/// Why a delta's author may not write it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Denial {
    /// Not yet known: the delta names governance this node has not
    /// received. Judged again once it arrives.
    NotYet(String),
    /// Never: the author may not write it.
    Refused(String),
    /// Its author was removed: the delta is taken only if it is in the
    /// causal past of these DAG heads (the removal's accepted frontier),
    /// which the judge of a delta DAG decides.
    BeforeFrontier(Vec<[u8; 32]>),
}

impl std::fmt::Display for Denial {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Denial::NotYet(why) | Denial::Refused(why) => f.write_str(why),
            Denial::BeforeFrontier(heads) => write!(
                f,
                "its author was removed or made read-only: only its deltas before the frontier that op named ({} head(s)) are taken",
                heads.len()
            ),
        }
    }
}

/// Why a delta naming governance ops not known here is judged later.
pub fn unknown_cut(unknown: Vec<OpId>) -> Denial {
    Denial::NotYet(format!(
        "the delta names {} governance op(s) not known here yet",
        unknown.len()
    ))
}

/// Why an op was not applied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refused {
    /// Some parents are not here yet.
    Waiting(Vec<OpId>),
    /// Already applied.
    Duplicate,
    /// Invalid: never applies.
    Invalid(String),
}

/// The governance state of one namespace.
#[derive(Clone, Debug, Default)]
pub struct Namespace {
    /// Its id.
    pub id: [u8; 32],
    /// The creator.
    pub creator: [u8; 32],
    /// A human name.
    pub name: Option<String>,
    /// Its application.
    pub app: Option<AppInfo>,
    /// Default capabilities.
    pub default_capabilities: u32,
    /// When it was created.
    pub created_millis: u64,
    /// Members by key.
    pub members: BTreeMap<[u8; 32], Member>,
    /// Contexts by id.
    pub contexts: BTreeMap<[u8; 32], Registered>,
    /// Subgroups by id.
    pub groups: BTreeMap<[u8; 32], Group>,
    /// The newest key epoch shared.
    pub key_epoch: u32,
    /// Each restricted subgroup's key: its newest epoch and its holders.
    pub group_keys: BTreeMap<[u8; 32], GroupKey>,
    /// Members removed; they cannot rejoin.
    pub removed: BTreeSet<[u8; 32]>,
    /// Every key that has had a role that writes (not read-only), at any
    /// point: the only authors a replica's state may name.
    pub writers: BTreeSet<[u8; 32]>,
    /// When each key that had a role that writes lost it (removed, or made
    /// read-only), by the clock of the op that did it; a role that writes
    /// again clears it. A replica's state may hold its entries stamped
    /// before then (and within the clock drift deltas are allowed), not
    /// after: the delta path refuses its later deltas.
    pub writes_ended: BTreeMap<[u8; 32], u64>,
    /// Each removed member's removal: who removed it and its accepted
    /// frontier (the first removal in fold order, if several removed it
    /// concurrently). Of the member's deltas, only those in the frontier's
    /// causal past are taken: one written after the removal, or that the
    /// remover had not seen, is refused, even naming governance from before
    /// the removal. A member made read-only by [`Body::MadeReadOnly`] is
    /// held alike ([`Removal::demoted`]); a role that writes given back
    /// frees only its deltas naming governance that knows of it
    /// ([`Removal::promoted`]).
    pub removals: BTreeMap<[u8; 32], Removal>,
    /// Invitations joined with, by their nonce (`secret_salt`), and the
    /// member each admitted: an invitation admits one key only.
    pub spent_invitations: BTreeMap<[u8; 32], [u8; 32]>,
    /// Metadata records by group and what they are attached to.
    pub metadata: BTreeMap<([u8; 32], metadata::Target), metadata::Record>,
    /// Each upgraded group's last upgrade.
    pub upgrades: BTreeMap<[u8; 32], UpgradeRecord>,
    /// Each upgraded group's upgrades in fold order: the ladder a member
    /// that missed some climbs, one rung at a time.
    pub upgrade_ladders: BTreeMap<[u8; 32], Vec<UpgradeRecord>>,
    /// The last cascade started at each group.
    pub cascades: BTreeMap<[u8; 32], Cascade>,
    /// Every application version a group has run: members may fetch them.
    pub app_history: Vec<AppInfo>,
    /// Auto-follow settings by (group, member); unset means the nearest
    /// setting up the group's parents, else [`AutoFollow::default`].
    pub auto_follow: BTreeMap<([u8; 32], [u8; 32]), AutoFollow>,
    /// Each member's proven chain identities, one per (chain, account),
    /// in the order proven.
    pub chain_identities: BTreeMap<[u8; 32], Vec<mero_chains::ChainIdentity>>,
    /// Chain challenge nonces used: a challenge proves once (no replay).
    pub chain_nonces: BTreeSet<[u8; 32]>,
    /// The protocol of the namespace and of its contexts, by id.
    pub protocols: BTreeMap<[u8; 32], mero_chains::Chain>,
    /// Attestations members' nodes recorded, in fold order.
    pub attestations: Vec<crate::relayer::attestation::Attestation>,
    /// Every applied op.
    pub ops: HashMap<OpId, SignedOp>,
    /// Ops no applied op names as a parent.
    pub heads: BTreeSet<OpId>,
}

impl Namespace {
    /// An empty state for namespace `id`, before its `Create` op.
    pub fn new(id: [u8; 32]) -> Namespace {
        Namespace {
            id,
            ..Namespace::default()
        }
    }

    /// A new namespace's state (empty, with its id) and its `Create` op.
    pub fn create(
        key: &SigningKey,
        millis: u64,
        create: Body,
    ) -> Result<(Namespace, SignedOp), EncodeError> {
        let id = namespace_id(&key.verifying_key().to_bytes(), millis, &create)?;
        let ns = Namespace::new(id);
        let op = ns.make(key, millis, create)?;
        Ok((ns, op))
    }

    /// Whether `who` may do what `need` asks (admins may do everything).
    pub fn allowed(&self, who: &[u8; 32], need: u32) -> bool {
        self.members.get(who).is_some_and(|m| {
            m.role == Role::Admin
                || m.capabilities.unwrap_or(self.default_capabilities) & need == need
        })
    }

    /// Whether `who` is a member.
    pub fn is_member(&self, who: &[u8; 32]) -> bool {
        self.members.contains_key(who)
    }

    /// Whether `who` is an admin.
    pub fn is_admin(&self, who: &[u8; 32]) -> bool {
        self.members.get(who).is_some_and(|m| m.role == Role::Admin)
    }

    /// Whether `who` has ever had a role that writes here (a member now,
    /// or one removed or demoted since): whether a replica's state may
    /// hold entries stamped by `who`.
    pub fn ever_wrote(&self, who: &[u8; 32]) -> bool {
        self.writers.contains(who)
    }

    /// When `who` lost the role that writes it had, if it did (see
    /// [`Namespace::writes_ended`]).
    pub fn writes_ended_at(&self, who: &[u8; 32]) -> Option<u64> {
        self.writes_ended.get(who).copied()
    }

    /// Whether `who` may author deltas: a member that is not read-only.
    pub fn may_write(&self, who: &[u8; 32]) -> bool {
        self.members
            .get(who)
            .is_some_and(|m| m.role != Role::ReadOnly)
    }

    /// A member's effective capability mask (admins have every bit).
    pub fn capabilities(&self, who: &[u8; 32]) -> Option<u32> {
        self.members.get(who).map(|m| {
            if m.role == Role::Admin {
                u32::MAX
            } else {
                m.capabilities.unwrap_or(self.default_capabilities)
            }
        })
    }

    /// The application `group`'s contexts run: its last upgrade's, else
    /// the namespace's.
    pub fn app_of(&self, group: &[u8; 32]) -> Option<&AppInfo> {
        match self.upgrades.get(group) {
            Some(u) => Some(&u.plan.app),
            None => self.app.as_ref(),
        }
    }

    /// Whether `group` is the namespace or one of its subgroups.
    pub fn has_group(&self, group: &[u8; 32]) -> bool {
        *group == self.id || self.groups.contains_key(group)
    }

    /// `root` and every group below it, parents before children (in id
    /// order among siblings); empty if `root` is not a group here.
    pub fn subtree(&self, root: &[u8; 32]) -> Vec<[u8; 32]> {
        if !self.has_group(root) {
            return Vec::new();
        }
        let mut out = vec![*root];
        let mut i = 0;
        // Breadth first; every group has one parent, so each is seen once.
        while i < out.len() {
            let at = out[i];
            out.extend(
                self.groups
                    .iter()
                    .filter(|(id, g)| g.parent == at && **id != at)
                    .map(|(id, _)| *id),
            );
            i += 1;
        }
        out
    }

    /// The newest cascade covering `group`, with the group it started at.
    pub fn cascade_of(&self, group: &[u8; 32]) -> Option<(&[u8; 32], &Cascade)> {
        self.cascades
            .iter()
            .filter(|(_, c)| c.groups.contains(group))
            .max_by_key(|(_, c)| c.initiated_millis)
    }

    /// The groups of the cascade started at `root` that have not committed
    /// (no `GroupUpgraded` to its target yet) and never will (it was
    /// aborted), and those still to come; `None` if no cascade started there.
    pub fn cascade_pending(&self, root: &[u8; 32]) -> Option<(Vec<[u8; 32]>, bool)> {
        let c = self.cascades.get(root)?;
        let pending = c
            .groups
            .iter()
            .filter(|g| {
                self.upgrades
                    .get(*g)
                    .is_none_or(|u| u.plan.app.blob != c.target.blob)
            })
            .copied()
            .collect();
        Some((pending, c.aborted.is_some()))
    }

    /// Whether `who` is a member of `group`: every namespace member is in
    /// the root group; a subgroup holds those admitted to it and, if it is
    /// open, the parent's members that hold JOIN_OPEN_SUBGROUPS. Removal
    /// from the namespace ends every subgroup membership.
    pub fn in_group(&self, who: &[u8; 32], group: &[u8; 32]) -> bool {
        let mut at = *group;
        // Parents are created before children, so the walk ends; the bound
        // guards it anyway.
        for _ in 0..=self.groups.len() {
            if !self.is_member(who) {
                return false;
            }
            if at == self.id {
                return true;
            }
            let Some(g) = self.groups.get(&at) else {
                return false;
            };
            if g.admitted.contains(who) || self.is_admin(who) {
                return true;
            }
            if !g.open || !self.allowed(who, caps::JOIN_OPEN_SUBGROUPS) {
                return false;
            }
            at = g.parent;
        }
        false
    }

    /// What `who` follows in `group`: its setting there, else the nearest
    /// one up the group's parents, else the default (contexts followed).
    pub fn auto_follow_of(&self, who: &[u8; 32], group: &[u8; 32]) -> AutoFollow {
        let mut at = *group;
        // Parents are created before children; the bound guards the walk.
        for _ in 0..=self.groups.len() {
            if let Some(f) = self.auto_follow.get(&(at, *who)) {
                return *f;
            }
            match self.groups.get(&at) {
                Some(g) => at = g.parent,
                None => break,
            }
        }
        AutoFollow::default()
    }

    /// Whether `who`'s node should join context `context` on its own: it is
    /// registered, `who` is a member of its group and follows its contexts.
    pub fn follows(&self, who: &[u8; 32], context: &[u8; 32]) -> bool {
        self.group_of(context)
            .is_some_and(|g| self.in_group(who, &g) && self.auto_follow_of(who, &g).contexts)
    }

    /// The group of a registered context.
    pub fn group_of(&self, context: &[u8; 32]) -> Option<[u8; 32]> {
        self.contexts.get(context).map(|r| r.group)
    }

    /// Whether `who` may author deltas in `context`: a member of its group
    /// that is not read-only.
    pub fn may_write_in(&self, who: &[u8; 32], context: &[u8; 32]) -> bool {
        self.may_write(who)
            && self
                .group_of(context)
                .is_some_and(|g| self.in_group(who, &g))
    }

    /// Whether `who` may read `context`: a member of its group (a context
    /// not registered here yet counts as the namespace's).
    pub fn may_read(&self, who: &[u8; 32], context: &[u8; 32]) -> bool {
        self.in_group(who, &self.group_of(context).unwrap_or(self.id))
    }

    /// `author` may change a subgroup's members or visibility: it manages
    /// members (or `extra`) in the namespace, or created the subgroup.
    fn check_group_manage(
        &self,
        author: &[u8; 32],
        group: &[u8; 32],
        extra: u32,
    ) -> Result<&Group, Refused> {
        let Some(g) = self.groups.get(group) else {
            return Err(Refused::Invalid("no such subgroup".into()));
        };
        if g.creator != *author
            && !self.allowed(author, caps::MANAGE_MEMBERS)
            && !(extra != 0 && self.allowed(author, extra))
        {
            return Err(Refused::Invalid(
                "the author may not manage the subgroup".into(),
            ));
        }
        Ok(g)
    }

    fn is_last_admin(&self, who: &[u8; 32]) -> bool {
        self.members.get(who).is_some_and(|m| m.role == Role::Admin)
            && self
                .members
                .values()
                .filter(|m| m.role == Role::Admin)
                .count()
                == 1
    }

    /// A metadata record: within the limits, on a group that exists and a
    /// member or context of it; set by a holder of manage-metadata, or by a
    /// member of the group for its own record (upstream's rule).
    fn check_metadata(
        &self,
        author: &[u8; 32],
        group: &[u8; 32],
        target: &metadata::Target,
        name: Option<&str>,
        data: &BTreeMap<String, String>,
    ) -> Result<(), Refused> {
        metadata::validate(name, data).map_err(Refused::Invalid)?;
        if !self.has_group(group) {
            return Err(Refused::Invalid("no such group".into()));
        }
        match target {
            metadata::Target::Group => {}
            metadata::Target::Member(m) => {
                if !self.in_group(m, group) {
                    return Err(Refused::Invalid("not a member of the group".into()));
                }
                if m == author {
                    return Ok(());
                }
            }
            metadata::Target::Context(c) => {
                if self.group_of(c) != Some(*group) {
                    return Err(Refused::Invalid(
                        "the context is not registered in this group".into(),
                    ));
                }
            }
        }
        if !self.in_group(author, group) || !self.allowed(author, caps::MANAGE_METADATA) {
            return Err(Refused::Invalid(
                "setting metadata needs the manage-metadata capability (or an admin)".into(),
            ));
        }
        Ok(())
    }

    /// `author` may change `member`: it holds MANAGE_MEMBERS, `member`
    /// exists, and only admins change admins.
    fn check_manage(&self, author: &[u8; 32], member: &[u8; 32]) -> Result<(), Refused> {
        if !self.allowed(author, caps::MANAGE_MEMBERS) {
            return Err(Refused::Invalid("the author may not manage members".into()));
        }
        let Some(target) = self.members.get(member) else {
            return Err(Refused::Invalid("no such member".into()));
        };
        if target.role == Role::Admin && !self.is_admin(author) {
            return Err(Refused::Invalid("only an admin may change an admin".into()));
        }
        Ok(())
    }

    /// `author` may give `member` `role`: it manages `member`, only an
    /// admin makes an admin, and the last admin does not step down.
    fn check_role(&self, author: &[u8; 32], member: &[u8; 32], role: Role) -> Result<(), Refused> {
        self.check_manage(author, member)?;
        if role == Role::Admin && !self.is_admin(author) {
            return Err(Refused::Invalid("only an admin may make an admin".into()));
        }
        if role != Role::Admin && self.is_last_admin(member) {
            return Err(Refused::Invalid(
                "the last admin cannot step down; make another admin first".into(),
            ));
        }
        Ok(())
    }

    /// Gives `member` `role` at `millis` by `op`, if it is still a member
    /// and not the last admin stepping down; whether it did. A role that
    /// writes ends a demotion's hold on its deltas that know of `op`.
    fn set_role(&mut self, member: &[u8; 32], role: Role, millis: u64, op: OpId) -> bool {
        // Two admins demoting each other concurrently: the second in fold
        // order finds the other already gone and stops.
        if role != Role::Admin && self.is_last_admin(member) {
            return false;
        }
        let Some(m) = self.members.get_mut(member) else {
            return false;
        };
        let wrote = m.role != Role::ReadOnly;
        m.role = role;
        if role != Role::ReadOnly {
            self.writers.insert(*member);
            self.writes_ended.remove(member);
            if let Some(r) = self.removals.get_mut(member).filter(|r| r.demoted) {
                r.promoted.get_or_insert(op);
            }
        } else if wrote {
            self.writes_ended.insert(*member, millis);
        }
        true
    }

    /// Holds `member`'s deltas to the frontier `op` names (a removal, or a
    /// demotion): the first such op in fold order is the one kept, and a
    /// later one's contexts are added to it.
    fn hold_to_frontier(
        &mut self,
        member: &[u8; 32],
        op: &Op,
        demoted: bool,
        frontier: &[ContextHeads],
    ) {
        // Encoded when it was received: cannot fail here.
        let id = op.id().unwrap_or_default();
        // A demotion whose hold a promotion ended: this op holds the member
        // anew (what the old hold refused is outside the new frontier's
        // past: no node took it).
        if self
            .removals
            .get(member)
            .is_some_and(|r| r.promoted.is_some())
        {
            self.removals.remove(member);
        }
        let removal = self.removals.entry(*member).or_insert_with(|| Removal {
            op: id,
            demoted,
            by: op.author,
            ..Removal::default()
        });
        // A removal after a demotion: no role given back ends it.
        removal.demoted &= demoted;
        for c in frontier {
            removal
                .frontier
                .entry(c.context)
                .or_default()
                .extend(c.heads.iter().copied());
        }
    }

    /// Applies one verified op if its parents are applied and it is valid in
    /// the state of its causal past (what its author had seen), so every node
    /// judges it the same whatever else it has received. Concurrent ops are
    /// then folded in one deterministic order (see [`Namespace::replay`]).
    pub fn apply(&mut self, signed: &SignedOp) -> Result<OpId, Refused> {
        // Known ops are common (every pull brings the whole log): they are
        // told by their id, before the signature is checked.
        let id = signed
            .op
            .id()
            .map_err(|e| Refused::Invalid(e.to_string()))?;
        if self.ops.contains_key(&id) {
            return Err(Refused::Duplicate);
        }
        signed.verify().map_err(Refused::Invalid)?;
        let op = &signed.op;
        if op.namespace != self.id {
            return Err(Refused::Invalid("op of another namespace".into()));
        }
        if op.parents.iter().collect::<BTreeSet<_>>().len() != op.parents.len() {
            return Err(Refused::Invalid("an op names a parent twice".into()));
        }
        let missing: Vec<OpId> = op
            .parents
            .iter()
            .filter(|p| !self.ops.contains_key(*p))
            .copied()
            .collect();
        if !missing.is_empty() {
            return Err(Refused::Waiting(missing));
        }
        if self.is_tip(&op.parents) {
            // The common case: its author had seen everything here, so the
            // current state is its causal past and it folds in last.
            self.check(op)?;
            self.effect(op);
            for p in &op.parents {
                self.heads.remove(p);
            }
            self.heads.insert(id);
            self.ops.insert(id, signed.clone());
        } else {
            let past = self.ancestors(&op.parents).map_err(Refused::Waiting)?;
            self.replay(&past).check(op)?;
            let mut ops = std::mem::take(&mut self.ops);
            ops.insert(id, signed.clone());
            let all: HashSet<OpId> = ops.keys().copied().collect();
            self.ops = ops;
            *self = self.replay(&all);
        }
        Ok(id)
    }

    /// Whether `cut`, as a set, is exactly the current heads.
    pub fn is_tip(&self, cut: &[OpId]) -> bool {
        cut.iter().copied().collect::<BTreeSet<_>>() == self.heads
    }

    /// Every op at or before `cut`, or the ops of `cut` not known here.
    pub fn ancestors(&self, cut: &[OpId]) -> Result<HashSet<OpId>, Vec<OpId>> {
        let unknown: Vec<OpId> = cut
            .iter()
            .filter(|c| !self.ops.contains_key(*c))
            .copied()
            .collect();
        if !unknown.is_empty() {
            return Err(unknown);
        }
        let mut seen: HashSet<OpId> = HashSet::new();
        let mut stack: Vec<OpId> = cut.to_vec();
        while let Some(id) = stack.pop() {
            if seen.insert(id)
                && let Some(op) = self.ops.get(&id)
            {
                stack.extend(op.op.parents.iter().copied());
            }
        }
        Ok(seen)
    }

    /// The state as of `cut` (a set of op ids, say the governance heads a
    /// delta's author had seen), or the ops of `cut` not known here.
    pub fn at(&self, cut: &[OpId]) -> Result<Cow<'_, Namespace>, Vec<OpId>> {
        if self.is_tip(cut) {
            return Ok(Cow::Borrowed(self));
        }
        let past = self.ancestors(cut)?;
        Ok(Cow::Owned(self.replay(&past)))
    }

    /// Whether everything in `inner` is at or before `outer`; false if
    /// `outer` is not known here.
    pub fn covers(&self, outer: &[OpId], inner: &[OpId]) -> bool {
        if inner.iter().all(|i| outer.contains(i)) {
            return true;
        }
        self.ancestors(outer)
            .is_ok_and(|past| inner.iter().all(|i| past.contains(i)))
    }

    /// Whether `author` may write a delta that names governance heads `cut`
    /// (see [`Denial`] for the two ways it may not)
    /// and whose parents named `parents`: it must be a member that is not
    /// read-only in the context's group as of `cut` (a write made before a revocation stays valid
    /// in any order of arrival), and `cut` must cover what the parents
    /// named (no citing an older view to write over newer state).
    pub fn judge(
        &self,
        author: &[u8; 32],
        context: &[u8; 32],
        cut: &[OpId],
        parents: &[Vec<OpId>],
    ) -> Result<(), Denial> {
        let at = self.at(cut).map_err(unknown_cut)?;
        self.judge_at(&at, author, context, cut, parents)
    }

    /// [`judge`](Self::judge), given the state at `cut` (`self.at(cut)`,
    /// which a caller judging many deltas naming one cut computes once).
    pub fn judge_at(
        &self,
        at: &Namespace,
        author: &[u8; 32],
        context: &[u8; 32],
        cut: &[OpId],
        parents: &[Vec<OpId>],
    ) -> Result<(), Denial> {
        if !at.contexts.contains_key(context) {
            return Err(Denial::Refused(
                "the delta names governance from before its context was registered".into(),
            ));
        }
        if !at.may_write_in(author, context) {
            return Err(Denial::Refused(format!(
                "author {} may not write in the context at the governance its delta names (not a member of its group, or read-only)",
                hex::encode(author)
            )));
        }
        if parents.iter().any(|p| !self.covers(cut, p)) {
            return Err(Denial::Refused(format!(
                "author {} names older governance than its delta's parents",
                hex::encode(author)
            )));
        }
        // Judged here, at what this node knows, not at `cut`: the author
        // picks the governance its delta names.
        if let Some(heads) = self
            .removals
            .get(author)
            .filter(|_| self.held_to_frontier(author, cut))
            .and_then(|r| r.frontier.get(context))
        {
            return Err(Denial::BeforeFrontier(heads.iter().copied().collect()));
        }
        Ok(())
    }

    /// Whether a delta of `author` naming governance `cut` is held to its
    /// removal's (or demotion's) frontier: it was removed or demoted, and
    /// the delta does not name governance knowing of both the demotion and
    /// a role that writes given back since (knowing of a promotion made
    /// concurrently with the demotion alone, it cites a view from before
    /// the demotion).
    pub fn held_to_frontier(&self, author: &[u8; 32], cut: &[OpId]) -> bool {
        self.removals
            .get(author)
            .is_some_and(|r| r.promoted.is_none_or(|p| !self.covers(cut, &[r.op, p])))
    }

    /// The state the ops in `keep` (closed under parents) give, folded in
    /// one order every node computes alike: parents first, then by the
    /// author's clock and the op id. Each op was valid in its own causal
    /// past; the fold only guards invariants concurrency could break (the
    /// last admin, removed members rejoining).
    fn replay(&self, keep: &HashSet<OpId>) -> Namespace {
        // Each removal, with what its author had seen: an op of the removed
        // member that the removal had not seen (concurrent with it, or
        // backdated to look so) does nothing. Removal wins.
        let removals: Vec<([u8; 32], OpId, HashSet<OpId>)> = keep
            .iter()
            .filter_map(|id| match &self.ops.get(id)?.op.body {
                Body::MemberRemoved { member, .. } => {
                    let past = self.ancestors(&[*id]).ok()?;
                    Some((*member, *id, past))
                }
                _ => None,
            })
            .collect();
        let mut out = Namespace::new(self.id);
        for id in self.order(keep) {
            if let Some(signed) = self.ops.get(&id) {
                let op = &signed.op;
                let cancelled = removals
                    .iter()
                    .any(|(m, r, past)| *m == op.author && *r != id && !past.contains(&id));
                // Valid where its author stood, and still allowed here:
                // concurrent changes can take an author's rights away.
                if !cancelled && out.check_folded(op) {
                    out.effect(op);
                }
                for p in &signed.op.parents {
                    out.heads.remove(p);
                }
                out.heads.insert(id);
                out.ops.insert(id, signed.clone());
            }
        }
        out
    }

    /// The ops of `keep` in fold order (Kahn's algorithm, smallest
    /// (clock, id) first among the ready).
    fn order(&self, keep: &HashSet<OpId>) -> Vec<OpId> {
        let mut waiting: HashMap<OpId, usize> = HashMap::new();
        let mut children: HashMap<OpId, Vec<OpId>> = HashMap::new();
        let mut ready = BinaryHeap::new();
        for id in keep {
            let Some(op) = self.ops.get(id) else { continue };
            let parents = op.op.parents.iter().filter(|p| keep.contains(*p)).count();
            for p in op.op.parents.iter().filter(|p| keep.contains(*p)) {
                children.entry(*p).or_default().push(*id);
            }
            if parents == 0 {
                ready.push(Reverse((op.op.millis, *id)));
            } else {
                waiting.insert(*id, parents);
            }
        }
        let mut out = Vec::with_capacity(keep.len());
        while let Some(Reverse((_, id))) = ready.pop() {
            out.push(id);
            for c in children.get(&id).into_iter().flatten() {
                if let Some(n) = waiting.get_mut(c) {
                    *n -= 1;
                    if *n == 0 {
                        waiting.remove(c);
                        if let Some(op) = self.ops.get(c) {
                            ready.push(Reverse((op.op.millis, *c)));
                        }
                    }
                }
            }
        }
        out
    }

    /// Whether a join's `proofs` meet its invitation's conditions, checked
    /// at the op's time (the admitting member's clock): each names this
    /// namespace, the joiner and the invitation's account, uses a nonce no
    /// proof used before and its signature verifies. Deterministic, so the
    /// fold checks it again (two concurrent joins with one proof admit the
    /// first). The identities proven, one per condition.
    pub(crate) fn check_join_conditions(
        &self,
        op: &Op,
        invitation: &SignedInvitation,
        member: &[u8; 32],
        proofs: &[ChainProof],
    ) -> Result<Vec<(ChainProof, mero_chains::ChainIdentity)>, invitation::ConditionError> {
        invitation::check_conditions(
            &invitation.conditions,
            proofs,
            &self.id,
            member,
            op.millis / 1000,
            |n| self.chain_nonces.contains(n),
        )
    }

    /// Whether `op`, valid in its causal past, is still allowed in the fold
    /// state (the invitation's signature was checked already).
    fn check_folded(&self, op: &Op) -> bool {
        if let Body::Create { .. } = op.body {
            return self.ops.is_empty();
        }
        self.check_with(op, false).is_ok()
    }

    /// Whether `op` is valid in this state (its causal past).
    fn check(&self, op: &Op) -> Result<(), Refused> {
        self.check_with(op, true)
    }

    fn check_with(&self, op: &Op, verify_invitation: bool) -> Result<(), Refused> {
        match &op.body {
            Body::Create { .. } => {
                if !op.parents.is_empty() || !self.ops.is_empty() {
                    return Err(Refused::Invalid("a second Create op".into()));
                }
                let derived = namespace_id(&op.author, op.millis, &op.body)
                    .map_err(|e| Refused::Invalid(e.to_string()))?;
                if derived != self.id {
                    return Err(Refused::Invalid(
                        "Create op does not derive the namespace id".into(),
                    ));
                }
            }
            Body::MemberJoined { .. } | Body::MemberJoinedWithProofs { .. } => {
                let Some(Join {
                    member,
                    invitation,
                    proofs,
                    ..
                }) = op.body.join()
                else {
                    return Err(Refused::Invalid("not a join".into()));
                };
                let inv = &invitation.invitation;
                if self.ops.is_empty() {
                    return Err(Refused::Invalid("join before Create".into()));
                }
                // Only a member who may invite admits anyone: a joiner's own
                // claims (its clock, its reuse of an old invitation) count for
                // nothing.
                if !self.allowed(&op.author, caps::INVITE_MEMBERS) {
                    return Err(Refused::Invalid(
                        "only a member who may invite admits members".into(),
                    ));
                }
                if self.removed.contains(member) {
                    return Err(Refused::Invalid("a removed member cannot rejoin".into()));
                }
                if let Some(holder) = self.spent_invitations.get(&inv.secret_salt)
                    && holder != member
                {
                    return Err(Refused::Invalid(
                        "the invitation was used by another member already: ask for a new one"
                            .into(),
                    ));
                }
                // The invitation was valid when the member joined.
                if verify_invitation {
                    invitation
                        .verify(&self.id, op.millis / 1000)
                        .map_err(|e| Refused::Invalid(e.to_string()))?;
                }
                if !self.allowed(&inv.inviter_identity, caps::INVITE_MEMBERS) {
                    return Err(Refused::Invalid(
                        "the inviter may not invite members".into(),
                    ));
                }
                if inv.invited_role == Role::Admin && !self.is_admin(&inv.inviter_identity) {
                    return Err(Refused::Invalid("only an admin may invite an admin".into()));
                }
                // Its conditions were met when the member joined, by proofs
                // whose nonces no proof had used before (in the fold too:
                // two concurrent joins with one proof admit the first).
                let met = self
                    .check_join_conditions(op, invitation, member, proofs)
                    .map_err(|e| Refused::Invalid(e.to_string()))?;
                crate::relayer::gate::check_token_conditions(
                    self,
                    op,
                    &invitation.conditions,
                    &met,
                )
                .map_err(|e| Refused::Invalid(e.to_string()))?;
            }
            Body::ContextRegistered {
                context,
                group,
                salt,
                ..
            } => {
                if scoped_id(&self.id, &op.author, salt) != *context {
                    return Err(Refused::Invalid(
                        "the context id is not the author's to register".into(),
                    ));
                }
                if !self.allowed(&op.author, caps::CREATE_CONTEXT) {
                    return Err(Refused::Invalid(
                        "the author may not create contexts".into(),
                    ));
                }
                if !self.has_group(group) {
                    return Err(Refused::Invalid("no such group".into()));
                }
                if !self.in_group(&op.author, group) {
                    return Err(Refused::Invalid(
                        "the author is not a member of the group".into(),
                    ));
                }
                if self.contexts.contains_key(context) {
                    return Err(Refused::Invalid("the context is registered already".into()));
                }
            }
            Body::ContextDetached { context } => {
                let Some(r) = self.contexts.get(context) else {
                    return Err(Refused::Invalid("no such context".into()));
                };
                if r.creator != op.author && !self.is_admin(&op.author) {
                    return Err(Refused::Invalid(
                        "only its creator or an admin detaches a context".into(),
                    ));
                }
            }
            Body::GroupCreated {
                group,
                parent,
                salt,
                ..
            } => {
                if scoped_id(&self.id, &op.author, salt) != *group {
                    return Err(Refused::Invalid(
                        "the group id is not the author's to create".into(),
                    ));
                }
                if !self.allowed(&op.author, caps::CREATE_SUBGROUP) {
                    return Err(Refused::Invalid(
                        "the author may not create subgroups".into(),
                    ));
                }
                if self.has_group(group) {
                    return Err(Refused::Invalid("the group exists already".into()));
                }
                if !self.has_group(parent) {
                    return Err(Refused::Invalid("no such parent group".into()));
                }
                if !self.in_group(&op.author, parent) {
                    return Err(Refused::Invalid(
                        "the author is not a member of the parent group".into(),
                    ));
                }
            }
            Body::GroupVisibilitySet { group, .. } => {
                self.check_group_manage(&op.author, group, caps::MANAGE_VISIBILITY)?;
            }
            Body::GroupUpgraded { group, plan } => {
                if !self.is_admin(&op.author) {
                    return Err(Refused::Invalid("only an admin may upgrade a group".into()));
                }
                if !self.has_group(group) {
                    return Err(Refused::Invalid("no such group".into()));
                }
                if plan.to_state_version < plan.from_state_version {
                    return Err(Refused::Invalid(
                        "an upgrade cannot go back to an older state version".into(),
                    ));
                }
                if self.app_of(group).is_some_and(|a| a.blob == plan.app.blob) {
                    return Err(Refused::Invalid(
                        "the group already runs that application".into(),
                    ));
                }
            }
            Body::CascadeStarted {
                root,
                target,
                groups,
                ..
            } => {
                if !self.is_admin(&op.author) {
                    return Err(Refused::Invalid(
                        "only an admin may cascade an upgrade".into(),
                    ));
                }
                if !self.has_group(root) {
                    return Err(Refused::Invalid("no such group".into()));
                }
                let below: BTreeSet<[u8; 32]> = self.subtree(root).into_iter().collect();
                if groups.is_empty() || groups.iter().any(|g| !below.contains(g)) {
                    return Err(Refused::Invalid(
                        "a cascade covers groups of its subtree only".into(),
                    ));
                }
                if groups
                    .iter()
                    .all(|g| self.app_of(g).is_some_and(|a| a.blob == target.blob))
                {
                    return Err(Refused::Invalid(
                        "the groups already run that application".into(),
                    ));
                }
            }
            Body::CascadeAborted { root } => {
                if !self.is_admin(&op.author) {
                    return Err(Refused::Invalid("only an admin may abort a cascade".into()));
                }
                if !self.cascades.contains_key(root) {
                    return Err(Refused::Invalid("no cascade started there".into()));
                }
            }
            Body::AutoFollowSet { group, member, .. } => {
                if !self.has_group(group) {
                    return Err(Refused::Invalid("no such group".into()));
                }
                if op.author != *member && !self.is_admin(&op.author) {
                    return Err(Refused::Invalid(
                        "only the member itself or an admin sets its auto-follow".into(),
                    ));
                }
                if !self.in_group(member, group) {
                    return Err(Refused::Invalid("not a member of the group".into()));
                }
            }
            Body::GroupKeyShared { group, epoch, .. } => {
                self.check_group_key(&op.author, group, *epoch)?;
            }
            Body::GroupMemberAdded { group, member }
            | Body::GroupMemberRemoved { group, member } => {
                self.check_group_manage(&op.author, group, 0)?;
                if !self.is_member(member) {
                    return Err(Refused::Invalid("not a member of the namespace".into()));
                }
            }
            Body::MetadataSet {
                group,
                target,
                name,
                data,
            } => self.check_metadata(&op.author, group, target, name.as_deref(), data)?,
            Body::RoleSet { member, role } => self.check_role(&op.author, member, *role)?,
            Body::MadeReadOnly { member, .. } => {
                self.check_role(&op.author, member, Role::ReadOnly)?;
            }
            Body::FrontierNamed { member, .. } => {
                if !self.allowed(&op.author, caps::MANAGE_MEMBERS) {
                    return Err(Refused::Invalid("the author may not manage members".into()));
                }
                if !self.removals.contains_key(member) {
                    return Err(Refused::Invalid(
                        "the member was neither removed nor made read-only".into(),
                    ));
                }
            }
            Body::CapabilitiesSet { member, .. } => self.check_manage(&op.author, member)?,
            Body::MemberRemoved { member, .. } => {
                // Members may leave on their own.
                if op.author != *member {
                    self.check_manage(&op.author, member)?;
                } else if !self.members.contains_key(member) {
                    return Err(Refused::Invalid("not a member".into()));
                }
                if *member == self.creator {
                    return Err(Refused::Invalid("the creator cannot be removed".into()));
                }
                if self.is_last_admin(member) {
                    return Err(Refused::Invalid(
                        "the last admin cannot leave the namespace orphaned".into(),
                    ));
                }
            }
            Body::KeyShared { epoch, wrapped } => {
                // Sharing the current key is part of inviting; a new epoch
                // (a rotation) is member management.
                // A rotation moves exactly one epoch on.
                let rotation = *epoch > self.key_epoch;
                if rotation && Some(*epoch) != self.key_epoch.checked_add(1) {
                    return Err(Refused::Invalid("a key epoch that skips ahead".into()));
                }
                let need = if rotation {
                    caps::MANAGE_MEMBERS
                } else {
                    caps::INVITE_MEMBERS
                };
                if !self.allowed(&op.author, need) {
                    return Err(Refused::Invalid("the author may not share keys".into()));
                }
                if epoch.saturating_add(1) < self.key_epoch {
                    return Err(Refused::Invalid("a key of a retired epoch".into()));
                }
                if wrapped
                    .iter()
                    .any(|w| !self.members.contains_key(&w.member))
                {
                    return Err(Refused::Invalid("a key wrapped for a non-member".into()));
                }
            }
            Body::ChainIdentityProven { challenge, proof } => {
                crate::chains::check(self, op, challenge, proof, verify_invitation)
                    .map_err(Refused::Invalid)?;
            }
            Body::ChainAttested { attestation } => {
                crate::relayer::gate::check_attestation(self, op, attestation)
                    .map_err(Refused::Invalid)?;
            }
            Body::ProtocolSet { target, .. } => {
                crate::chains::check_protocol(self, op, target).map_err(Refused::Invalid)?;
            }
        }
        Ok(())
    }

    /// Folds a valid op into this state. Concurrent ops may meet a state
    /// their authors never saw: the guards keep the invariants there.
    fn effect(&mut self, op: &Op) {
        match &op.body {
            Body::Create {
                name,
                app,
                default_capabilities,
                addrs,
                ..
            } => {
                // Only one Create derives the id; guard the fold anyway.
                if !self.ops.is_empty() {
                    return;
                }
                self.creator = op.author;
                self.name = name.clone();
                self.app = Some(app.clone());
                self.default_capabilities = *default_capabilities;
                self.created_millis = op.millis;
                self.writers.insert(op.author);
                self.members.insert(
                    op.author,
                    Member {
                        role: Role::Admin,
                        capabilities: None,
                        addrs: addrs.clone(),
                        joined_millis: op.millis,
                    },
                );
            }
            Body::MemberJoined { .. } | Body::MemberJoinedWithProofs { .. } => {
                let Some(Join {
                    member,
                    invitation,
                    proofs,
                    addrs,
                }) = op.body.join()
                else {
                    return;
                };
                // The proofs' nonces are spent and their identities are the
                // member's, as if it had proven them after joining.
                if let Ok(met) = self.check_join_conditions(op, invitation, member, proofs) {
                    for (p, identity) in met {
                        self.chain_nonces.insert(p.challenge.nonce);
                        let ids = self.chain_identities.entry(*member).or_default();
                        ids.retain(|i| {
                            !(i.chain == identity.chain && i.account == identity.account)
                        });
                        ids.push(identity);
                    }
                }
                self.spent_invitations
                    .entry(invitation.invitation.secret_salt)
                    .or_insert(*member);
                // Removed concurrently: the removal holds.
                if self.removed.contains(member) {
                    return;
                }
                if !self.members.contains_key(member)
                    && invitation.invitation.invited_role != Role::ReadOnly
                {
                    self.writers.insert(*member);
                }
                // A second join (new addresses) keeps the first role.
                self.members
                    .entry(*member)
                    .and_modify(|m| m.addrs = addrs.to_vec())
                    .or_insert_with(|| Member {
                        role: invitation.invitation.invited_role,
                        capabilities: None,
                        addrs: addrs.to_vec(),
                        joined_millis: op.millis,
                    });
            }
            Body::ContextRegistered {
                context,
                name,
                group,
                ..
            } => {
                self.contexts.entry(*context).or_insert(Registered {
                    name: name.clone(),
                    group: *group,
                    creator: op.author,
                    millis: op.millis,
                });
            }
            Body::ContextDetached { context } => {
                self.contexts.remove(context);
            }
            Body::GroupCreated {
                group,
                parent,
                name,
                open,
                ..
            } => {
                self.groups.entry(*group).or_insert(Group {
                    parent: *parent,
                    name: name.clone(),
                    open: *open,
                    creator: op.author,
                    millis: op.millis,
                    admitted: BTreeSet::new(),
                });
            }
            Body::GroupVisibilitySet { group, open } => {
                if let Some(g) = self.groups.get_mut(group) {
                    g.open = *open;
                }
            }
            Body::GroupUpgraded { group, plan } => {
                if let Some(old) = self.app_of(group).cloned()
                    && !self.app_history.iter().any(|a| a.blob == old.blob)
                {
                    self.app_history.push(old);
                }
                self.app_history.push(plan.app.clone());
                let record = UpgradeRecord {
                    plan: (**plan).clone(),
                    initiated_by: op.author,
                    initiated_millis: op.millis,
                };
                self.upgrade_ladders
                    .entry(*group)
                    .or_default()
                    .push(record.clone());
                self.upgrades.insert(*group, record);
            }
            Body::GroupMemberAdded { group, member } => {
                if let Some(g) = self.groups.get_mut(group) {
                    g.admitted.insert(*member);
                }
            }
            Body::GroupMemberRemoved { group, member } => {
                if let Some(g) = self.groups.get_mut(group) {
                    g.admitted.remove(member);
                }
            }
            Body::MetadataSet {
                group,
                target,
                name,
                data,
            } => {
                self.metadata.insert(
                    (*group, *target),
                    metadata::Record {
                        name: name.clone(),
                        data: data.clone(),
                        updated_at: op.millis,
                        updated_by: op.author,
                    },
                );
            }
            Body::RoleSet { member, role } => {
                // Encoded when it was received: cannot fail here.
                self.set_role(member, *role, op.millis, op.id().unwrap_or_default());
            }
            Body::FrontierNamed { member, frontier } => {
                // Encoded when it was received: cannot fail here.
                let id = op.id().unwrap_or_default();
                let Some(removal) = self.removals.get_mut(member) else {
                    return;
                };
                for c in frontier {
                    if removal.frontier.contains_key(&c.context) {
                        continue;
                    }
                    removal
                        .frontier
                        .insert(c.context, c.heads.iter().copied().collect());
                    removal.named.insert(c.context, (op.author, id));
                }
            }
            Body::MadeReadOnly { member, frontier } => {
                let wrote = self
                    .members
                    .get(member)
                    .is_some_and(|m| m.role != Role::ReadOnly);
                if self.set_role(
                    member,
                    Role::ReadOnly,
                    op.millis,
                    op.id().unwrap_or_default(),
                ) && wrote
                {
                    self.hold_to_frontier(member, op, true, frontier);
                }
            }
            Body::CapabilitiesSet {
                member,
                capabilities,
            } => {
                if let Some(m) = self.members.get_mut(member) {
                    m.capabilities = Some(*capabilities);
                }
            }
            Body::MemberRemoved { member, frontier } => {
                if *member == self.creator || self.is_last_admin(member) {
                    return;
                }
                self.hold_to_frontier(member, op, false, frontier);
                if self
                    .members
                    .remove(member)
                    .is_some_and(|m| m.role != Role::ReadOnly)
                {
                    self.writes_ended.insert(*member, op.millis);
                }
                self.removed.insert(*member);
            }
            Body::KeyShared { epoch, .. } => self.key_epoch = self.key_epoch.max(*epoch),
            Body::GroupKeyShared {
                group,
                epoch,
                wrapped,
            } => self.fold_group_key(&op.author, group, *epoch, wrapped),
            Body::CascadeStarted {
                root,
                target,
                state_versions,
                groups,
            } => {
                self.cascades.insert(
                    *root,
                    Cascade {
                        target: target.clone(),
                        state_versions: *state_versions,
                        groups: groups.clone(),
                        initiated_by: op.author,
                        initiated_millis: op.millis,
                        aborted: None,
                    },
                );
            }
            Body::CascadeAborted { root } => {
                if let Some(c) = self.cascades.get_mut(root) {
                    c.aborted.get_or_insert((op.author, op.millis));
                }
            }
            Body::AutoFollowSet {
                group,
                member,
                contexts,
                subgroups,
            } => {
                self.auto_follow.insert(
                    (*group, *member),
                    AutoFollow {
                        contexts: *contexts,
                        subgroups: *subgroups,
                    },
                );
            }
            Body::ChainIdentityProven { challenge, proof } => {
                crate::chains::fold(self, op, challenge, proof);
            }
            Body::ChainAttested { attestation } => {
                self.attestations.push(attestation.clone());
            }
            Body::ProtocolSet { target, protocol } => {
                // Set once: a concurrent second setting loses in fold order.
                self.protocols.entry(*target).or_insert(*protocol);
            }
        }
    }

    /// Applies `ops` in any order: retries those waiting for parents until no
    /// more apply. Returns the ids applied and the ops refused as invalid.
    pub fn apply_all(&mut self, ops: Vec<SignedOp>) -> (Vec<(OpId, SignedOp)>, Vec<String>) {
        let mut waiting = ops;
        let mut applied = Vec::new();
        let mut invalid = Vec::new();
        loop {
            let before = applied.len();
            let mut still = Vec::new();
            for op in waiting {
                match self.apply(&op) {
                    Ok(id) => applied.push((id, op)),
                    Err(Refused::Waiting(_)) => still.push(op),
                    Err(Refused::Duplicate) => {}
                    Err(Refused::Invalid(why)) => invalid.push(why),
                }
            }
            waiting = still;
            if waiting.is_empty() || applied.len() == before {
                break;
            }
        }
        if !waiting.is_empty() {
            invalid.push(format!("{} op(s) still wait for parents", waiting.len()));
        }
        (applied, invalid)
    }

    /// A new op by `key` on top of the current heads.
    pub fn make(&self, key: &SigningKey, millis: u64, body: Body) -> Result<SignedOp, EncodeError> {
        SignedOp::sign(
            Op {
                namespace: self.id,
                author: key.verifying_key().to_bytes(),
                parents: self.heads.iter().copied().collect(),
                millis,
                body,
            },
            key,
        )
    }

    /// Its ops in an order that applies (parents first).
    pub fn ordered_ops(&self) -> Vec<SignedOp> {
        let all: HashSet<OpId> = self.ops.keys().copied().collect();
        self.order(&all)
            .into_iter()
            .filter_map(|id| self.ops.get(&id).cloned())
            .collect()
    }
}

#[cfg(test)]
pub(crate) mod tests {
    #![allow(clippy::unwrap_used, reason = "tests fail fast")]
    use super::*;
    use crate::governance::invitation::Invitation;

    fn app() -> AppInfo {
        AppInfo {
            id: [1; 32],
            blob: [2; 32],
            size: 3,
            package: "p".into(),
            version: "1".into(),
            source: "s".into(),
        }
    }

    fn invite(by: &SigningKey, ns: [u8; 32], role: Role) -> SignedInvitation {
        SignedInvitation::sign(
            Invitation {
                inviter_identity: by.verifying_key().to_bytes(),
                group_id: ns,
                expiration_timestamp: 10_000,
                // Each invitation its own: one admits one key.
                secret_salt: rand::random(),
                invited_role: role,
            },
            by,
        )
        .unwrap()
    }

    /// A namespace `admin` created (its `Create` applied), and that op.
    pub(crate) fn created(admin: &SigningKey) -> (Namespace, SignedOp) {
        let (mut ns, create) = Namespace::create(
            admin,
            1_000,
            Body::Create {
                nonce: [5; 32],
                name: None,
                app: app(),
                default_capabilities: caps::DEFAULT,
                addrs: vec![],
            },
        )
        .unwrap();
        ns.apply(&create).unwrap();
        (ns, create)
    }

    #[test]
    fn an_invitation_admits_one_key_only() {
        let admin = SigningKey::from_bytes(&[1; 32]);
        let (bob, carol) = ([2; 32], [3; 32]);
        let (mut a, create) = created(&admin);
        let id = a.id;
        let shared = invite(&admin, id, Role::ReadOnly);
        let join = |ns: &Namespace, member: [u8; 32], millis: u64| {
            ns.make(
                &admin,
                millis,
                Body::MemberJoined {
                    member,
                    invitation: shared.clone(),
                    addrs: vec![format!("/ip4/127.0.0.1/tcp/{millis}")],
                },
            )
            .unwrap()
        };
        let bob_joins = join(&a, bob, 2_000);
        a.apply(&bob_joins).unwrap();
        // Bob again (new addresses): the same key, allowed.
        a.apply(&join(&a, bob, 2_500)).unwrap();
        // Carol with Bob's invitation: refused, read-only or not.
        let carol_joins = join(&a, carol, 3_000);
        assert!(
            matches!(a.apply(&carol_joins), Err(Refused::Invalid(why)) if why.contains("used by another member"))
        );
        assert!(!a.is_member(&carol));
        // Two admissions made concurrently on two nodes (each valid where
        // its author stood): every node keeps the first in the fold's
        // order, whichever arrived first.
        let mut b = Namespace::new(id);
        b.apply(&create).unwrap();
        let carol_first = join(&b, carol, 2_000);
        let mut x = Namespace::new(id);
        x.apply_all(vec![create.clone(), bob_joins.clone(), carol_first.clone()]);
        let mut y = Namespace::new(id);
        y.apply_all(vec![carol_first, create.clone(), bob_joins]);
        assert_eq!(x.members, y.members);
        assert!(x.is_member(&bob) != x.is_member(&carol), "one of the two");
        assert_eq!(x.members.len(), 2, "the admin and one of the two");
    }

    #[test]
    fn same_ops_in_any_order_give_the_same_members() {
        let admin = SigningKey::from_bytes(&[1; 32]);
        let bob = SigningKey::from_bytes(&[2; 32]);
        let carol = SigningKey::from_bytes(&[3; 32]);
        let (mut a, create) = created(&admin);
        let id = a.id;
        let join_b = a
            .make(
                &admin,
                2_000,
                Body::MemberJoined {
                    member: bob.verifying_key().to_bytes(),
                    invitation: invite(&admin, id, Role::Member),
                    addrs: vec![],
                },
            )
            .unwrap();
        let join_c = a
            .make(
                &admin,
                2_000,
                Body::MemberJoined {
                    member: carol.verifying_key().to_bytes(),
                    invitation: invite(&admin, id, Role::ReadOnly),
                    addrs: vec![],
                },
            )
            .unwrap();
        a.apply(&join_b).unwrap();
        a.apply(&join_c).unwrap();
        let reg = a
            .make(
                &bob,
                3_000,
                Body::ContextRegistered {
                    context: scoped_id(&id, &bob.verifying_key().to_bytes(), &[8; 32]),
                    name: None,
                    group: id,
                    salt: [8; 32],
                },
            )
            .unwrap();
        // Bob lacks CREATE_CONTEXT by default.
        assert!(matches!(a.apply(&reg), Err(Refused::Invalid(_))));

        let mut b = Namespace::new(id);
        let (applied, invalid) = b.apply_all(vec![join_c.clone(), join_b.clone(), create.clone()]);
        assert_eq!(applied.len(), 3);
        assert!(invalid.is_empty());
        assert_eq!(a.members, b.members);
        assert_eq!(a.heads, b.heads);
        assert_eq!(
            b.members[&carol.verifying_key().to_bytes()].role,
            Role::ReadOnly
        );

        // A read-only member's invitation does not let anyone in.
        let dave = SigningKey::from_bytes(&[4; 32]);
        let bad = b
            .make(
                &admin,
                4_000,
                Body::MemberJoined {
                    member: dave.verifying_key().to_bytes(),
                    invitation: invite(&carol, id, Role::Member),
                    addrs: vec![],
                },
            )
            .unwrap();
        assert!(matches!(b.apply(&bad), Err(Refused::Invalid(_))));
        // Nor may a joiner admit itself, whatever invitation it holds.
        let itself = b
            .make(
                &dave,
                4_000,
                Body::MemberJoined {
                    member: dave.verifying_key().to_bytes(),
                    invitation: invite(&admin, id, Role::Member),
                    addrs: vec![],
                },
            )
            .unwrap();
        assert!(matches!(b.apply(&itself), Err(Refused::Invalid(_))));
        // A forged Create for the same id is refused.
        let mut c = Namespace::new(id);
        let forged = c
            .make(
                &bob,
                1,
                Body::Create {
                    nonce: [5; 32],
                    name: None,
                    app: app(),
                    default_capabilities: 0,
                    addrs: vec![],
                },
            )
            .unwrap();
        assert!(matches!(c.apply(&forged), Err(Refused::Invalid(_))));
        assert_eq!(
            b.ordered_ops().first().map(|o| o.op.id().unwrap()),
            Some(create.op.id().unwrap())
        );
    }

    #[test]
    fn only_managers_change_members_and_the_namespace_keeps_an_admin() {
        let admin = SigningKey::from_bytes(&[1; 32]);
        let bob = SigningKey::from_bytes(&[2; 32]);
        let carol = SigningKey::from_bytes(&[3; 32]);
        let key = |k: &SigningKey| k.verifying_key().to_bytes();
        let nonce = [5; 32];
        let (mut ns, create) = Namespace::create(
            &admin,
            1_000,
            Body::Create {
                nonce,
                name: None,
                app: app(),
                default_capabilities: caps::DEFAULT,
                addrs: vec![],
            },
        )
        .unwrap();
        let id = ns.id;
        let ops = [create];
        ns.apply(&ops[0]).unwrap();
        for (who, r) in [(&bob, Role::Member), (&carol, Role::ReadOnly)] {
            let join = ns
                .make(
                    &admin,
                    2_000,
                    Body::MemberJoined {
                        member: key(who),
                        invitation: invite(&admin, id, r),
                        addrs: vec![],
                    },
                )
                .unwrap();
            ns.apply(&join).unwrap();
        }
        assert!(ns.may_write(&key(&bob)) && !ns.may_write(&key(&carol)));
        assert_eq!(ns.capabilities(&key(&bob)), Some(caps::DEFAULT));

        // Bob may not set capabilities or remove anyone yet.
        let grant = |by: &SigningKey, ns: &Namespace, who: &SigningKey, c: u32| {
            ns.make(
                by,
                3_000,
                Body::CapabilitiesSet {
                    member: key(who),
                    capabilities: c,
                },
            )
            .unwrap()
        };
        assert!(matches!(
            ns.apply(&grant(&bob, &ns, &bob, u32::MAX)),
            Err(Refused::Invalid(_))
        ));
        let remove_carol = |by: &SigningKey, ns: &Namespace| {
            ns.make(
                by,
                3_000,
                Body::MemberRemoved {
                    member: key(&carol),
                    frontier: vec![],
                },
            )
            .unwrap()
        };
        assert!(matches!(
            ns.apply(&remove_carol(&bob, &ns)),
            Err(Refused::Invalid(_))
        ));
        // The admin makes Bob a member manager; the mask is absolute.
        ns.apply(&grant(&admin, &ns, &bob, caps::MANAGE_MEMBERS))
            .unwrap();
        assert_eq!(ns.capabilities(&key(&bob)), Some(caps::MANAGE_MEMBERS));
        assert!(!ns.allowed(&key(&bob), caps::JOIN_OPEN_SUBGROUPS));
        // A full mask does not make Bob an admin: he still cannot touch one.
        ns.apply(&grant(&admin, &ns, &bob, u32::MAX)).unwrap();
        let demote = ns
            .make(
                &bob,
                4_000,
                Body::RoleSet {
                    member: key(&admin),
                    role: Role::Member,
                },
            )
            .unwrap();
        assert!(matches!(ns.apply(&demote), Err(Refused::Invalid(_))));
        ns.apply(&remove_carol(&bob, &ns)).unwrap();
        assert!(!ns.is_member(&key(&carol)));
        // The creator cannot be removed, the last admin cannot step down.
        let remove_admin = ns
            .make(
                &admin,
                5_000,
                Body::MemberRemoved {
                    member: key(&admin),
                    frontier: vec![],
                },
            )
            .unwrap();
        assert!(matches!(ns.apply(&remove_admin), Err(Refused::Invalid(_))));
        let step_down = ns
            .make(
                &admin,
                5_000,
                Body::RoleSet {
                    member: key(&admin),
                    role: Role::Member,
                },
            )
            .unwrap();
        assert!(matches!(ns.apply(&step_down), Err(Refused::Invalid(_))));
        // A member may leave on its own.
        let leave = ns
            .make(
                &bob,
                6_000,
                Body::MemberRemoved {
                    member: key(&bob),
                    frontier: vec![],
                },
            )
            .unwrap();
        ns.apply(&leave).unwrap();
        assert_eq!(ns.members.len(), 1);
        // Removed members cannot come back, even admitted by an admin.
        let back = ns
            .make(
                &admin,
                7_000,
                Body::MemberJoined {
                    member: key(&carol),
                    invitation: invite(&admin, id, Role::Member),
                    addrs: vec![],
                },
            )
            .unwrap();
        assert!(matches!(ns.apply(&back), Err(Refused::Invalid(_))));
        // Key epochs move one at a time.
        let skip = ns
            .make(
                &admin,
                8_000,
                Body::KeyShared {
                    epoch: u32::MAX,
                    wrapped: vec![],
                },
            )
            .unwrap();
        assert!(matches!(ns.apply(&skip), Err(Refused::Invalid(_))));
    }

    /// A namespace by `admin` with `others` joined in the given roles.
    pub(super) fn namespace_with(admin: &SigningKey, others: &[(&SigningKey, Role)]) -> Namespace {
        let (mut ns, _) = created(admin);
        let id = ns.id;
        for (who, r) in others {
            let join = ns
                .make(
                    admin,
                    2_000,
                    Body::MemberJoined {
                        member: who.verifying_key().to_bytes(),
                        invitation: invite(admin, id, *r),
                        addrs: vec![],
                    },
                )
                .unwrap();
            ns.apply(&join).unwrap();
        }
        ns
    }

    /// Registers a context of `by`'s (salted with `salt`) in the root
    /// group at `millis`; returns its id.
    pub(crate) fn register_context(
        ns: &mut Namespace,
        by: &SigningKey,
        salt: u8,
        millis: u64,
    ) -> [u8; 32] {
        let context = scoped_id(&ns.id, &by.verifying_key().to_bytes(), &[salt; 32]);
        let register = ns
            .make(
                by,
                millis,
                Body::ContextRegistered {
                    context,
                    name: None,
                    group: ns.id,
                    salt: [salt; 32],
                },
            )
            .unwrap();
        ns.apply(&register).unwrap();
        context
    }

    #[test]
    fn a_key_counts_as_a_writer_once_it_had_a_role_that_writes() {
        let alice = SigningKey::from_bytes(&[1; 32]);
        let bob = SigningKey::from_bytes(&[2; 32]);
        let carol = SigningKey::from_bytes(&[3; 32]);
        let key = |k: &SigningKey| k.verifying_key().to_bytes();
        let mut ns = namespace_with(&alice, &[(&bob, Role::ReadOnly), (&carol, Role::Member)]);
        assert!(ns.ever_wrote(&key(&alice)) && ns.ever_wrote(&key(&carol)));
        assert!(!ns.ever_wrote(&key(&bob)), "read-only from its join");
        assert!(!ns.ever_wrote(&[9; 32]), "never a member");
        // Demoted, then removed, Carol's earlier entries stay hers; Bob,
        // promoted, may have written since.
        for body in [
            Body::RoleSet {
                member: key(&carol),
                role: Role::ReadOnly,
            },
            Body::RoleSet {
                member: key(&bob),
                role: Role::Member,
            },
            Body::MemberRemoved {
                member: key(&carol),
                frontier: vec![],
            },
        ] {
            let op = ns.make(&alice, 3_000, body).unwrap();
            ns.apply(&op).unwrap();
        }
        assert!(!ns.is_member(&key(&carol)));
        assert!(ns.ever_wrote(&key(&carol)) && ns.ever_wrote(&key(&bob)));
        // When each lost the role that writes: Carol at her demotion (her
        // removal, read-only by then, changes nothing); Bob writes now.
        assert_eq!(ns.writes_ended_at(&key(&carol)), Some(3_000));
        assert_eq!(ns.writes_ended_at(&key(&bob)), None);
        assert_eq!(ns.writes_ended_at(&key(&alice)), None);
        // A writer removed loses it at the removal; one demoted and
        // promoted back has it cleared.
        let set = |ns: &mut Namespace, millis, body| {
            let op = ns.make(&alice, millis, body).unwrap();
            ns.apply(&op).unwrap();
        };
        let role = |who: &SigningKey, role| Body::RoleSet {
            member: key(who),
            role,
        };
        set(&mut ns, 4_000, role(&bob, Role::ReadOnly));
        assert_eq!(ns.writes_ended_at(&key(&bob)), Some(4_000));
        set(&mut ns, 5_000, role(&bob, Role::Member));
        assert_eq!(ns.writes_ended_at(&key(&bob)), None);
        set(
            &mut ns,
            6_000,
            Body::MemberRemoved {
                member: key(&bob),
                frontier: vec![],
            },
        );
        assert_eq!(ns.writes_ended_at(&key(&bob)), Some(6_000));
    }

    #[test]
    fn concurrent_ops_are_judged_at_their_causal_past_and_fold_alike_in_any_order() {
        let alice = SigningKey::from_bytes(&[1; 32]);
        let bob = SigningKey::from_bytes(&[2; 32]);
        let carol = SigningKey::from_bytes(&[3; 32]);
        let dave = SigningKey::from_bytes(&[4; 32]);
        let key = |k: &SigningKey| k.verifying_key().to_bytes();
        let base = namespace_with(
            &alice,
            &[
                (&bob, Role::Admin),
                (&carol, Role::Admin),
                (&dave, Role::Member),
            ],
        );
        // From the same heads: Bob and Carol demote each other, Alice
        // removes Bob while Bob sets Dave's capabilities.
        let ops = [
            base.make(
                &bob,
                3_000,
                Body::RoleSet {
                    member: key(&carol),
                    role: Role::Member,
                },
            )
            .unwrap(),
            base.make(
                &carol,
                3_000,
                Body::RoleSet {
                    member: key(&bob),
                    role: Role::Member,
                },
            )
            .unwrap(),
            base.make(
                &alice,
                3_001,
                Body::MemberRemoved {
                    member: key(&bob),
                    frontier: vec![],
                },
            )
            .unwrap(),
            base.make(
                &bob,
                3_002,
                Body::CapabilitiesSet {
                    member: key(&dave),
                    capabilities: caps::INVITE_MEMBERS,
                },
            )
            .unwrap(),
        ];
        let mut results = Vec::new();
        for order in [[0, 1, 2, 3], [3, 2, 1, 0], [2, 0, 3, 1], [1, 3, 0, 2]] {
            let mut ns = base.clone();
            for i in order {
                // Each was valid where its author stood, whatever arrived first.
                ns.apply(&ops[i]).unwrap();
            }
            results.push((ns.members.clone(), ns.removed.clone(), ns.heads.clone()));
        }
        assert!(results.windows(2).all(|w| w[0] == w[1]), "{results:#?}");
        let (members, removed, _) = &results[0];
        assert!(removed.contains(&key(&bob)) && !members.contains_key(&key(&bob)));
        // Removal wins: Bob's changes that his removal had not seen do
        // nothing (his demotion of Carol, his change to Dave), however he
        // dates them.
        assert_eq!(members[&key(&dave)].capabilities, None);
        assert_eq!(members[&key(&alice)].role, Role::Admin);
        assert_eq!(members[&key(&carol)].role, Role::Admin);

        // Bob, removed, signs an op over the heads from before his removal:
        // valid where he claims to stand, and without effect.
        let mut ns = base.clone();
        ns.apply(&ops[2]).unwrap();
        let before = ns.members.clone();
        let backdated = base
            .make(
                &bob,
                1,
                Body::RoleSet {
                    member: key(&alice),
                    role: Role::ReadOnly,
                },
            )
            .unwrap();
        ns.apply(&backdated).unwrap();
        assert_eq!(ns.members, before);
        // An op naming a parent twice is refused outright.
        let mut twice = base
            .make(
                &alice,
                5_000,
                Body::MemberRemoved {
                    member: key(&dave),
                    frontier: vec![],
                },
            )
            .unwrap();
        let h = twice.op.parents[0];
        twice.op.parents = vec![h, h];
        let twice = SignedOp::sign(twice.op, &alice).unwrap();
        assert!(matches!(ns.apply(&twice), Err(Refused::Invalid(_))));

        // With only two admins, a mutual demotion leaves one of them.
        let base = namespace_with(&alice, &[(&bob, Role::Admin)]);
        let a = base
            .make(
                &alice,
                3_000,
                Body::RoleSet {
                    member: key(&bob),
                    role: Role::Member,
                },
            )
            .unwrap();
        let b = base
            .make(
                &bob,
                3_000,
                Body::RoleSet {
                    member: key(&alice),
                    role: Role::Member,
                },
            )
            .unwrap();
        let (mut x, mut y) = (base.clone(), base);
        x.apply(&a).unwrap();
        x.apply(&b).unwrap();
        y.apply(&b).unwrap();
        y.apply(&a).unwrap();
        assert_eq!(x.members, y.members);
        assert_eq!(
            x.members.values().filter(|m| m.role == Role::Admin).count(),
            1
        );
        assert_eq!(x.ordered_ops(), y.ordered_ops());
    }

    #[test]
    fn a_delta_is_judged_at_the_governance_it_names() {
        let alice = SigningKey::from_bytes(&[1; 32]);
        let bob = SigningKey::from_bytes(&[2; 32]);
        let carol = SigningKey::from_bytes(&[3; 32]);
        let key = |k: &SigningKey| k.verifying_key().to_bytes();
        let mut ns = namespace_with(&alice, &[(&bob, Role::Member), (&carol, Role::ReadOnly)]);
        let ctx = register_context(&mut ns, &alice, 21, 2_500);
        let before: Vec<OpId> = ns.heads.iter().copied().collect();
        let remove = ns
            .make(
                &alice,
                3_000,
                Body::MemberRemoved {
                    member: key(&bob),
                    frontier: vec![],
                },
            )
            .unwrap();
        ns.apply(&remove).unwrap();
        let after: Vec<OpId> = ns.heads.iter().copied().collect();

        // Written before the removal: valid wherever and whenever it arrives.
        assert_eq!(
            ns.judge(&key(&bob), &ctx, &before, std::slice::from_ref(&before)),
            Ok(())
        );
        // Written knowing of it: refused.
        assert!(ns.judge(&key(&bob), &ctx, &after, &[]).is_err());
        // Citing the old view over a parent that saw the removal: refused.
        let err = ns
            .judge(&key(&bob), &ctx, &before, std::slice::from_ref(&after))
            .unwrap_err()
            .to_string();
        assert!(err.contains("older governance"), "{err}");
        // Read-only members never write; nobody writes at no governance.
        assert!(ns.judge(&key(&carol), &ctx, &before, &[]).is_err());
        assert!(ns.judge(&key(&alice), &ctx, &[], &[]).is_err());
        // Unknown governance is not judged yet.
        let err = ns.judge(&key(&alice), &ctx, &[[9; 32]], &[]).unwrap_err();
        assert!(matches!(err, Denial::NotYet(_)), "{err}");
        assert!(err.to_string().contains("not known here"), "{err}");
        // The admin writes at either, over parents of either.
        assert_eq!(
            ns.judge(&key(&alice), &ctx, &after, &[before, after.clone()]),
            Ok(())
        );
    }

    #[test]
    fn a_removed_members_delta_is_held_to_the_frontiers_its_removals_named() {
        let alice = SigningKey::from_bytes(&[1; 32]);
        let bob = SigningKey::from_bytes(&[2; 32]);
        let carol = SigningKey::from_bytes(&[3; 32]);
        let key = |k: &SigningKey| k.verifying_key().to_bytes();
        let mut ns = namespace_with(&alice, &[(&bob, Role::Member), (&carol, Role::Admin)]);
        let held = register_context(&mut ns, &alice, 21, 2_500);
        let unheld = register_context(&mut ns, &alice, 22, 2_600);
        let before: Vec<OpId> = ns.heads.iter().copied().collect();
        // Alice and Carol remove Bob concurrently, each naming the heads
        // her node held of the one context both hold: the first in fold
        // order removes him and names his frontier, on every node alike.
        let removal = |by: &SigningKey, head: u8| {
            ns.make(
                by,
                3_000,
                Body::MemberRemoved {
                    member: key(&bob),
                    frontier: vec![ContextHeads {
                        context: held,
                        heads: vec![[head; 32]],
                    }],
                },
            )
            .unwrap()
        };
        let (by_alice, by_carol) = (removal(&alice, 5), removal(&carol, 6));
        let mut other = ns.clone();
        ns.apply(&by_alice).unwrap();
        ns.apply(&by_carol).unwrap();
        other.apply(&by_carol).unwrap();
        other.apply(&by_alice).unwrap();
        let first = if by_alice.op.id().unwrap() < by_carol.op.id().unwrap() {
            5
        } else {
            6
        };
        for n in [&ns, &other] {
            assert_eq!(
                n.removals[&key(&bob)].frontier[&held],
                BTreeSet::from([[first; 32]])
            );
        }

        // Naming the governance from before the removal: the author may
        // write there, and its delta is held to the frontier.
        assert_eq!(
            ns.judge(&key(&bob), &held, &before, std::slice::from_ref(&before)),
            Err(Denial::BeforeFrontier(vec![[first; 32]]))
        );
        // Where no remover held the context, the governance named decides.
        assert_eq!(
            ns.judge(&key(&bob), &unheld, &before, std::slice::from_ref(&before)),
            Ok(())
        );
        // Knowing of the removal, refused outright; others are not held.
        let after: Vec<OpId> = ns.heads.iter().copied().collect();
        assert!(matches!(
            ns.judge(&key(&bob), &held, &after, &[]),
            Err(Denial::Refused(_))
        ));
        assert_eq!(ns.judge(&key(&alice), &held, &after, &[]), Ok(()));
    }

    /// `admin`'s op making `member` read-only at `millis`, naming its
    /// frontier in `context` as the one head `head`.
    fn demotion(
        ns: &Namespace,
        admin: &SigningKey,
        member: &SigningKey,
        context: [u8; 32],
        millis: u64,
        head: [u8; 32],
    ) -> SignedOp {
        ns.make(
            admin,
            millis,
            Body::MadeReadOnly {
                member: member.verifying_key().to_bytes(),
                frontier: vec![ContextHeads {
                    context,
                    heads: vec![head],
                }],
            },
        )
        .unwrap()
    }

    /// A promotion made concurrently with the demotion (its author had not
    /// seen it) ends the hold when folded after it, but only for deltas
    /// naming governance that knows of both: a read-only member citing a
    /// view with the promotion and without the demotion is held still.
    #[test]
    fn a_promotion_concurrent_with_a_demotion_frees_only_deltas_knowing_both() {
        let alice = SigningKey::from_bytes(&[1; 32]);
        let bob = SigningKey::from_bytes(&[2; 32]);
        let carol = SigningKey::from_bytes(&[3; 32]);
        let key = |k: &SigningKey| k.verifying_key().to_bytes();
        let mut ns = namespace_with(&alice, &[(&bob, Role::Member), (&carol, Role::Admin)]);
        let context = register_context(&mut ns, &alice, 22, 2_500);
        let mut carols = ns.clone();
        let demote = demotion(&ns, &alice, &bob, context, 3_000, [5; 32]);
        let promote = carols
            .make(
                &carol,
                4_000,
                Body::RoleSet {
                    member: key(&bob),
                    role: Role::Admin,
                },
            )
            .unwrap();
        carols.apply(&promote).unwrap();
        let without_demotion: Vec<OpId> = carols.heads.iter().copied().collect();
        ns.apply(&demote).unwrap();
        ns.apply(&promote).unwrap();
        assert_eq!(
            ns.removals[&key(&bob)].promoted,
            Some(promote.op.id().unwrap())
        );
        let both: Vec<OpId> = ns.heads.iter().copied().collect();
        assert!(ns.held_to_frontier(&key(&bob), &without_demotion));
        assert!(!ns.held_to_frontier(&key(&bob), &both));
        let judge = |cut: &[OpId]| ns.judge(&key(&bob), &context, cut, &[cut.to_vec()]);
        assert_eq!(
            judge(&without_demotion),
            Err(Denial::BeforeFrontier(vec![[5; 32]]))
        );
        assert_eq!(judge(&both), Ok(()));
    }

    /// A demotion to read-only names the member's frontier as a removal
    /// does: its deltas naming its view from before are held to it (so a
    /// demoted member cannot write on by citing that view), even once a
    /// role that writes is given back. A plain `RoleSet` names none.
    #[test]
    fn a_demoted_members_delta_is_held_to_the_frontier_its_demotion_named() {
        let alice = SigningKey::from_bytes(&[1; 32]);
        let bob = SigningKey::from_bytes(&[2; 32]);
        let key = |k: &SigningKey| k.verifying_key().to_bytes();
        let mut ns = namespace_with(&alice, &[(&bob, Role::Member)]);
        let context = register_context(&mut ns, &alice, 21, 2_500);
        let registered = ns.clone();
        let before: Vec<OpId> = ns.heads.iter().copied().collect();
        let judge =
            |ns: &Namespace, cut: &[OpId]| ns.judge(&key(&bob), &context, cut, &[cut.to_vec()]);
        let demote = demotion(&ns, &alice, &bob, context, 3_000, [5; 32]);
        ns.apply(&demote).unwrap();
        assert_eq!(ns.members[&key(&bob)].role, Role::ReadOnly);
        assert_eq!(ns.writes_ended_at(&key(&bob)), Some(3_000));
        assert!(ns.removals[&key(&bob)].demoted);
        assert_eq!(
            judge(&ns, &before),
            Err(Denial::BeforeFrontier(vec![[5; 32]]))
        );
        // Knowing of the demotion: refused outright.
        let demoted: Vec<OpId> = ns.heads.iter().copied().collect();
        assert!(matches!(judge(&ns, &demoted), Err(Denial::Refused(_))));

        // A role that writes given back ends the hold for the deltas that
        // know of it; one naming its view from before (signed while it was
        // read-only, or one the hold refused) is held to it still, as every
        // node that judged it before the promotion held it.
        let promote = ns
            .make(
                &alice,
                4_000,
                Body::RoleSet {
                    member: key(&bob),
                    role: Role::Member,
                },
            )
            .unwrap();
        ns.apply(&promote).unwrap();
        assert_eq!(
            ns.removals[&key(&bob)].promoted,
            Some(promote.op.id().unwrap())
        );
        let promoted: Vec<OpId> = ns.heads.iter().copied().collect();
        assert_eq!(judge(&ns, &promoted), Ok(()));
        assert_eq!(
            judge(&ns, &before),
            Err(Denial::BeforeFrontier(vec![[5; 32]]))
        );
        assert!(ns.held_to_frontier(&key(&bob), &before));
        assert!(!ns.held_to_frontier(&key(&bob), &promoted));

        // Made read-only by a plain RoleSet (as before this op existed):
        // no frontier, the governance a delta names decides alone.
        let plain = ns
            .make(
                &alice,
                5_000,
                Body::RoleSet {
                    member: key(&bob),
                    role: Role::ReadOnly,
                },
            )
            .unwrap();
        ns.apply(&plain).unwrap();
        assert_eq!(judge(&ns, &promoted), Ok(()));

        // Writing again, then demoted again: held anew, to the new
        // frontier, whatever the earlier promotion.
        let rewrite = ns
            .make(
                &alice,
                5_200,
                Body::RoleSet {
                    member: key(&bob),
                    role: Role::Member,
                },
            )
            .unwrap();
        ns.apply(&rewrite).unwrap();
        let again = demotion(&ns, &alice, &bob, context, 5_500, [6; 32]);
        ns.apply(&again).unwrap();
        assert_eq!(ns.removals[&key(&bob)].promoted, None);
        assert_eq!(
            judge(&ns, &promoted),
            Err(Denial::BeforeFrontier(vec![[6; 32]]))
        );

        // A removal after a demotion keeps the demotion's frontier, and no
        // role given back ends it.
        let mut ns2 = registered;
        ns2.apply(&demote).unwrap();
        let remove = ns2
            .make(
                &alice,
                6_000,
                Body::MemberRemoved {
                    member: key(&bob),
                    frontier: vec![],
                },
            )
            .unwrap();
        ns2.apply(&remove).unwrap();
        let removal = &ns2.removals[&key(&bob)];
        assert!(!removal.demoted);
        assert_eq!(removal.frontier[&context], BTreeSet::from([[5; 32]]));
    }

    /// Where the remover held no frontier, a member manager that holds
    /// the context names it; the first in fold order is kept, only a
    /// manager may, and only for a member removed or demoted.
    #[test]
    fn a_frontier_its_remover_did_not_hold_is_named_by_a_manager_that_does() {
        let alice = SigningKey::from_bytes(&[1; 32]);
        let bob = SigningKey::from_bytes(&[2; 32]);
        let carol = SigningKey::from_bytes(&[3; 32]);
        let dave = SigningKey::from_bytes(&[4; 32]);
        let key = |k: &SigningKey| k.verifying_key().to_bytes();
        let mut ns = namespace_with(
            &alice,
            &[
                (&bob, Role::Member),
                (&carol, Role::Admin),
                (&dave, Role::Member),
            ],
        );
        let context = register_context(&mut ns, &carol, 21, 2_500);
        let before: Vec<OpId> = ns.heads.iter().copied().collect();
        let named = |ns: &Namespace, by: &SigningKey, head: u8, millis: u64| {
            ns.make(
                by,
                millis,
                Body::FrontierNamed {
                    member: key(&bob),
                    frontier: vec![ContextHeads {
                        context,
                        heads: vec![[head; 32]],
                    }],
                },
            )
        };
        // Not removed yet: nothing to name.
        let early = named(&ns, &carol, 5, 2_600).unwrap();
        assert!(matches!(ns.apply(&early), Err(Refused::Invalid(_))));
        let remove = ns
            .make(
                &alice,
                3_000,
                Body::MemberRemoved {
                    member: key(&bob),
                    frontier: vec![],
                },
            )
            .unwrap();
        ns.apply(&remove).unwrap();
        assert_eq!(
            ns.judge(&key(&bob), &context, &before, std::slice::from_ref(&before)),
            Ok(()),
            "no frontier: the governance named decides"
        );
        // A plain member may not name it.
        let by_dave = named(&ns, &dave, 7, 3_100).unwrap();
        assert!(matches!(ns.apply(&by_dave), Err(Refused::Invalid(_))));
        // Two managers at once: the first in fold order is kept.
        let (by_carol, by_alice) = (
            named(&ns, &carol, 5, 3_200).unwrap(),
            named(&ns, &alice, 6, 3_300).unwrap(),
        );
        ns.apply(&by_alice).unwrap();
        ns.apply(&by_carol).unwrap();
        let removal = &ns.removals[&key(&bob)];
        assert_eq!(removal.frontier[&context], BTreeSet::from([[5; 32]]));
        assert_eq!(removal.source(&context), key(&carol));
        let ops: Vec<OpId> = removal.ops(&context).collect();
        assert_eq!(
            ops,
            vec![remove.op.id().unwrap(), by_carol.op.id().unwrap()]
        );
        assert_eq!(
            ns.judge(&key(&bob), &context, &before, std::slice::from_ref(&before)),
            Err(Denial::BeforeFrontier(vec![[5; 32]]))
        );
    }

    #[test]
    fn a_cascade_covers_its_subtree_commits_group_by_group_and_an_abort_keeps_what_committed() {
        let alice = SigningKey::from_bytes(&[1; 32]);
        let bob = SigningKey::from_bytes(&[2; 32]);
        let key = |k: &SigningKey| k.verifying_key().to_bytes();
        let mut ns = namespace_with(&alice, &[(&bob, Role::Member)]);
        let root = ns.id;
        let group = |ns: &mut Namespace, salt: u8, parent: [u8; 32]| {
            let id = scoped_id(&ns.id, &key(&alice), &[salt; 32]);
            let op = ns
                .make(
                    &alice,
                    3_000,
                    Body::GroupCreated {
                        group: id,
                        salt: [salt; 32],
                        parent,
                        name: None,
                        open: true,
                    },
                )
                .unwrap();
            ns.apply(&op).unwrap();
            id
        };
        let a = group(&mut ns, 1, root);
        let b = group(&mut ns, 2, a);
        let c = group(&mut ns, 3, root);
        let subtree = ns.subtree(&root);
        assert_eq!(subtree[0], root);
        assert_eq!(subtree.len(), 4);
        let pos = |g: &[u8; 32]| subtree.iter().position(|x| x == g).unwrap();
        assert!(pos(&a) < pos(&b), "parents before children");
        assert_eq!(ns.subtree(&a), vec![a, b]);
        assert!(ns.subtree(&[77; 32]).is_empty());

        let target = AppInfo {
            blob: [3; 32],
            version: "2".into(),
            ..app()
        };
        let start = |groups: Vec<[u8; 32]>| Body::CascadeStarted {
            root,
            target: target.clone(),
            state_versions: (1, 2),
            groups,
        };
        // Only admins, only groups of the subtree.
        let by_bob = ns.make(&bob, 4_000, start(vec![root])).unwrap();
        assert!(matches!(ns.apply(&by_bob), Err(Refused::Invalid(_))));
        let outside = ns.make(&alice, 4_000, start(vec![root, [77; 32]])).unwrap();
        assert!(matches!(ns.apply(&outside), Err(Refused::Invalid(_))));
        let abort_nothing = ns
            .make(&alice, 4_000, Body::CascadeAborted { root })
            .unwrap();
        assert!(matches!(ns.apply(&abort_nothing), Err(Refused::Invalid(_))));

        let op = ns.make(&alice, 4_000, start(subtree.clone())).unwrap();
        ns.apply(&op).unwrap();
        assert_eq!(ns.cascade_pending(&root), Some((subtree.clone(), false)));
        assert_eq!(ns.cascade_of(&b).map(|(r, _)| *r), Some(root));
        // The root commits; the rest stay pending until theirs do.
        let upgraded = |ns: &Namespace, g: [u8; 32]| {
            ns.make(
                &alice,
                5_000,
                Body::GroupUpgraded {
                    group: g,
                    plan: Box::new(UpgradePlan {
                        app: target.clone(),
                        from_version: "1".into(),
                        from_state_version: 1,
                        to_state_version: 2,
                        barrier: (5_000, 0),
                        fuel: 1,
                        contexts: Vec::new(),
                    }),
                },
            )
            .unwrap()
        };
        ns.apply(&upgraded(&ns, root)).unwrap();
        ns.apply(&upgraded(&ns, a)).unwrap();
        let (pending, aborted) = ns.cascade_pending(&root).unwrap();
        assert_eq!(pending.len(), 2);
        assert!(!pending.contains(&root) && !pending.contains(&a) && !aborted);
        // Aborted by an admin: what committed stays, the rest is left.
        let by_bob = ns.make(&bob, 6_000, Body::CascadeAborted { root }).unwrap();
        assert!(matches!(ns.apply(&by_bob), Err(Refused::Invalid(_))));
        let abort = ns
            .make(&alice, 6_000, Body::CascadeAborted { root })
            .unwrap();
        ns.apply(&abort).unwrap();
        let (pending, aborted) = ns.cascade_pending(&root).unwrap();
        assert!(aborted);
        assert_eq!(pending.len(), 2);
        assert_eq!(ns.app_of(&a).map(|x| x.blob), Some(target.blob));
        assert_eq!(ns.app_of(&c).map(|x| x.blob), Some(app().blob));
    }

    #[test]
    fn subgroups_open_inherit_restricted_admit_and_contexts_follow_their_group() {
        let alice = SigningKey::from_bytes(&[1; 32]);
        let bob = SigningKey::from_bytes(&[2; 32]);
        let carol = SigningKey::from_bytes(&[3; 32]);
        let key = |k: &SigningKey| k.verifying_key().to_bytes();
        let mut ns = namespace_with(&alice, &[(&bob, Role::Member), (&carol, Role::Member)]);
        // Ids are bound to the namespace and their creator.
        let nsid = ns.id;
        let id_of = |by: &SigningKey, salt: u8| scoped_id(&nsid, &key(by), &[salt; 32]);
        let (open, secret, inner) = (id_of(&alice, 11), id_of(&alice, 12), id_of(&alice, 13));
        let create = |ns: &Namespace, by: &SigningKey, salt: u8, parent, open| {
            ns.make(
                by,
                3_000,
                Body::GroupCreated {
                    group: scoped_id(&ns.id, &key(by), &[salt; 32]),
                    salt: [salt; 32],
                    parent,
                    name: None,
                    open,
                },
            )
            .unwrap()
        };
        // Members may not create subgroups by default.
        assert!(matches!(
            ns.apply(&create(&ns, &bob, 10, ns.id, true)),
            Err(Refused::Invalid(_))
        ));
        ns.apply(&create(&ns, &alice, 11, ns.id, true)).unwrap();
        ns.apply(&create(&ns, &alice, 12, ns.id, false)).unwrap();
        // An open subgroup inside the restricted one.
        ns.apply(&create(&ns, &alice, 13, secret, true)).unwrap();
        assert!(matches!(
            ns.apply(&create(&ns, &alice, 14, [99; 32], true)),
            Err(Refused::Invalid(_))
        ));
        // Nobody creates a group under an id that is not theirs.
        let stolen = ns
            .make(
                &alice,
                3_000,
                Body::GroupCreated {
                    group: id_of(&bob, 15),
                    salt: [15; 32],
                    parent: ns.id,
                    name: None,
                    open: true,
                },
            )
            .unwrap();
        assert!(matches!(ns.apply(&stolen), Err(Refused::Invalid(_))));

        // Open: the parent's members (with JOIN_OPEN_SUBGROUPS, the default).
        assert!(ns.in_group(&key(&bob), &open) && ns.in_group(&key(&carol), &open));
        // Restricted: admitted ones only, and what is open beneath follows.
        assert!(!ns.in_group(&key(&bob), &secret) && !ns.in_group(&key(&bob), &inner));
        let admit = ns
            .make(
                &alice,
                4_000,
                Body::GroupMemberAdded {
                    group: secret,
                    member: key(&bob),
                },
            )
            .unwrap();
        ns.apply(&admit).unwrap();
        assert!(ns.in_group(&key(&bob), &secret) && ns.in_group(&key(&bob), &inner));
        assert!(!ns.in_group(&key(&carol), &secret));
        // Admins are in every group; a member cannot admit itself.
        assert!(ns.in_group(&key(&alice), &secret));
        let itself = ns
            .make(
                &carol,
                4_000,
                Body::GroupMemberAdded {
                    group: secret,
                    member: key(&carol),
                },
            )
            .unwrap();
        assert!(matches!(ns.apply(&itself), Err(Refused::Invalid(_))));

        // Contexts attach to a group; only its members write there.
        let register = |ns: &Namespace, by: &SigningKey, salt: u8, group| {
            ns.make(
                by,
                5_000,
                Body::ContextRegistered {
                    context: scoped_id(&ns.id, &key(by), &[salt; 32]),
                    salt: [salt; 32],
                    name: None,
                    group,
                },
            )
            .unwrap()
        };
        ns.apply(&register(&ns, &alice, 21, secret)).unwrap();
        let ctx = id_of(&alice, 21);
        let cut: Vec<OpId> = ns.heads.iter().copied().collect();
        assert_eq!(ns.judge(&key(&bob), &ctx, &cut, &[]), Ok(()));
        let err = ns
            .judge(&key(&carol), &ctx, &cut, &[])
            .unwrap_err()
            .to_string();
        assert!(err.contains("not a member of its group"), "{err}");
        assert!(ns.may_read(&key(&bob), &ctx) && !ns.may_read(&key(&carol), &ctx));
        // A delta naming governance from before its context's registration.
        let err = ns
            .judge(&key(&alice), &id_of(&alice, 22), &cut, &[])
            .unwrap_err()
            .to_string();
        assert!(err.contains("before its context was registered"), "{err}");

        // Without JOIN_OPEN_SUBGROUPS, open subgroups are closed to Carol.
        let caps = ns
            .make(
                &alice,
                6_000,
                Body::CapabilitiesSet {
                    member: key(&carol),
                    capabilities: 0,
                },
            )
            .unwrap();
        ns.apply(&caps).unwrap();
        assert!(!ns.in_group(&key(&carol), &open) && ns.in_group(&key(&bob), &open));
        // Restricting the open subgroup closes it to Bob too.
        let restrict = ns
            .make(
                &alice,
                7_000,
                Body::GroupVisibilitySet {
                    group: open,
                    open: false,
                },
            )
            .unwrap();
        ns.apply(&restrict).unwrap();
        assert!(!ns.in_group(&key(&bob), &open));
        // Leaving the namespace ends every subgroup membership.
        let leave = ns
            .make(
                &bob,
                8_000,
                Body::MemberRemoved {
                    member: key(&bob),
                    frontier: vec![],
                },
            )
            .unwrap();
        ns.apply(&leave).unwrap();
        assert!(!ns.in_group(&key(&bob), &secret));
        assert_eq!(ns.groups[&secret].parent, ns.id);
    }

    #[test]
    fn members_follow_contexts_by_default_and_only_they_or_an_admin_opt_out() {
        let alice = SigningKey::from_bytes(&[1; 32]);
        let bob = SigningKey::from_bytes(&[2; 32]);
        let carol = SigningKey::from_bytes(&[3; 32]);
        let key = |k: &SigningKey| k.verifying_key().to_bytes();
        let mut ns = namespace_with(&alice, &[(&bob, Role::Member), (&carol, Role::Member)]);
        let root = ns.id;
        let follow = |ns: &Namespace, by: &SigningKey, group, member, contexts| {
            ns.make(
                by,
                3_000,
                Body::AutoFollowSet {
                    group,
                    member,
                    contexts,
                    subgroups: false,
                },
            )
            .unwrap()
        };
        let sub = scoped_id(&root, &key(&alice), &[11; 32]);
        let made = ns
            .make(
                &alice,
                2_500,
                Body::GroupCreated {
                    group: sub,
                    salt: [11; 32],
                    parent: root,
                    name: None,
                    open: true,
                },
            )
            .unwrap();
        ns.apply(&made).unwrap();
        let register = |ns: &Namespace, salt: u8, group| {
            ns.make(
                &alice,
                2_600,
                Body::ContextRegistered {
                    context: scoped_id(&ns.id, &key(&alice), &[salt; 32]),
                    salt: [salt; 32],
                    name: None,
                    group,
                },
            )
            .unwrap()
        };
        ns.apply(&register(&ns, 21, root)).unwrap();
        ns.apply(&register(&ns, 22, sub)).unwrap();
        let (in_root, in_sub) = (
            scoped_id(&root, &key(&alice), &[21; 32]),
            scoped_id(&root, &key(&alice), &[22; 32]),
        );
        // On by default, in the namespace and in its open subgroup.
        assert!(ns.follows(&key(&bob), &in_root) && ns.follows(&key(&bob), &in_sub));
        // Carol may not turn Bob's off; Bob may, and it reaches the subgroup.
        assert!(matches!(
            ns.apply(&follow(&ns, &carol, root, key(&bob), false)),
            Err(Refused::Invalid(_))
        ));
        ns.apply(&follow(&ns, &bob, root, key(&bob), false))
            .unwrap();
        assert!(!ns.follows(&key(&bob), &in_root) && !ns.follows(&key(&bob), &in_sub));
        assert!(ns.follows(&key(&carol), &in_root));
        // A setting on the subgroup wins there; an admin may set it.
        ns.apply(&follow(&ns, &alice, sub, key(&bob), true))
            .unwrap();
        assert!(!ns.follows(&key(&bob), &in_root) && ns.follows(&key(&bob), &in_sub));
        // Not for non-members, nor for groups that do not exist.
        let stranger = SigningKey::from_bytes(&[9; 32]);
        assert!(matches!(
            ns.apply(&follow(&ns, &alice, root, key(&stranger), true)),
            Err(Refused::Invalid(_))
        ));
        assert!(matches!(
            ns.apply(&follow(&ns, &alice, [77; 32], key(&bob), true)),
            Err(Refused::Invalid(_))
        ));
        // Nobody follows what is not registered.
        assert!(!ns.follows(&key(&bob), &[5; 32]));
    }
}
