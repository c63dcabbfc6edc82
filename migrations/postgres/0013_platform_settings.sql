-- Settings the admin changes at run time through the API (`PUT /system/config`), by name,
-- the value as JSON. Absent: the default.
CREATE TABLE platform_settings (
    name   TEXT PRIMARY KEY,
    value  TEXT NOT NULL
);
