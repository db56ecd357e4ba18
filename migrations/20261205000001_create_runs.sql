-- Onboarding runs, their proposals, and the snapshots that apply takes.
--
-- `run_number` is the counter behind the public run id (`run_0001`, ...,
-- `run_10000`). AUTOINCREMENT never hands out a number twice, even after the
-- newest run is deleted by hand, and listing by it keeps creation order past
-- 9999 runs.

create table runs (
    run_number              integer primary key autoincrement,
    run_id                  text not null unique,
    state                   text not null,
    folder_path             text not null,
    note_count              integer not null,
    orphan_notes            integer not null,
    link_density            real not null,
    -- The newest snapshot taken by apply, if any.
    snapshot_id             text,
    -- The snapshot named by the newest rollback, if any.
    rolled_back_snapshot_id text,
    created_at              text not null,
    updated_at              text not null
);

-- A run's proposals; `position` is the creation order within the run, from 1.
create table proposals (
    proposal_id text primary key not null,
    run_id      text not null references runs (run_id),
    position    integer not null,
    change_type text not null,
    risk_tier   text not null,
    confidence  real not null,
    action_mode text not null,
    status      text not null,
    updated_at  text not null,
    unique (run_id, position)
);

-- One row per apply; `sequence` is the n of `snap-{run_id}-{n}`.
create table snapshots (
    snapshot_id    text primary key not null,
    run_id         text not null references runs (run_id),
    sequence       integer not null,
    created_at     text not null,
    -- Set by the rollback of this snapshot; a snapshot is rolled back once.
    rolled_back_at text,
    unique (run_id, sequence)
);

-- The proposals that an apply changed, so that its rollback can return them
-- to `approved`.
create table snapshot_proposals (
    snapshot_id text not null references snapshots (snapshot_id),
    proposal_id text not null references proposals (proposal_id),
    primary key (snapshot_id, proposal_id)
);
