-- SQLite's TEXT has no size limit: nothing to change (kept so both back ends share versions).
SELECT 1;
