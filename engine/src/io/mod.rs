//! File access behind a narrow async trait: the io_uring (glommio DmaFile) backend and an in-memory, crash-simulating backend for tests.
