/*
 * Loaded into every stdio MCP server the runtime starts (LD_PRELOAD, named by
 * PERSTACK_SERVER_PRELOAD in the runtime image). It marks the server not dumpable before
 * the server's own code runs: its /proc files then belong to root, so other processes of
 * the same user (the Expert's exec commands) can neither read its environment (the
 * secrets of requiredEnv) from /proc/<pid>/environ, nor ptrace it, nor open its JSON-RPC
 * pipes through /proc/<pid>/fd. Its own children inherit the preload, and so the mark.
 */
#include <sys/prctl.h>

__attribute__((constructor)) static void perstack_undumpable(void)
{
    prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
}
