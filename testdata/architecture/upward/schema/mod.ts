// Fixture: a schema folder.
export const SCHEMA = 1;
