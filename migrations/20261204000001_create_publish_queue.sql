-- The publish queue and the published list.
--
-- A draft id is unique in the queue: marking a draft that is already queued
-- updates its title and content in place, so `queue_position` (the row id) keeps
-- the draft's place in the queue. The published list keeps every confirmation,
-- so one draft id may appear there several times (marked, confirmed, marked
-- again, confirmed again).
--
-- Times are RFC 3339 UTC text so that the sqlite3 shell shows them as they are.

create table drafts (
    queue_position   integer primary key autoincrement,
    draft_id         text not null unique,
    title            text not null,
    prepared_content text not null,
    queued_at        text not null,
    updated_at       text not null
);

create table published (
    publish_position integer primary key autoincrement,
    draft_id         text not null,
    title            text not null,
    published_url    text not null,
    published_at     text not null
);

create index published_draft_id on published (draft_id);
