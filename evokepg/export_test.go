package evokepg

// SQLReadStreams is ReadStreams' query, for tests of its plan.
const SQLReadStreams = sqlReadStreams
