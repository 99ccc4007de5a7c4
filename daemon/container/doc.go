// Package container runs the container lifecycle: Create, Start, Stop,
// Remove, status and listing, and the reaction to exits.
//
// A container is a set of resources, each made by another package: a
// writable layer and its mount in containers/storage, a bundle directory
// with the OCI spec (daemon/spec), and a runtime container with its conmon
// (daemon/oci). A JSON record per container, written before the first
// resource is made and updated as each one appears, names them all, so
// Remove (or a restart after a crash half-way) can undo every one.
//
// State machine, as recorded:
//
//	creating --> created --> running --> exited
//	                 \____________________^      (killed before start)
//
// Containers outlive the daemon: conmon keeps them and writes their exit
// codes to the exit directory, which is watched with inotify while the
// daemon runs and read at start-up for exits that happened while it was
// down.
//
// Locking: Service.mu guards the indexes; each entry's mu guards its
// record and is held only for short updates, never while waiting for a
// container to exit, so a Stop never waits behind another Stop; each
// entry's op serialises Create/Start/Remove of one container.
package container
