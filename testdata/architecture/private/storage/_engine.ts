// Fixture: a private file of storage.
export const ENGINE = 1;
