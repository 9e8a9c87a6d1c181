-- The trigram operator classes of the users_*_trgm_idx indexes (ListUsers' query). pg_trgm ships
-- with PostgreSQL (contrib) and is trusted: a role that may create objects in the database may
-- create it, no superuser needed.
CREATE EXTENSION IF NOT EXISTS pg_trgm;
