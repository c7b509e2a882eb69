/*
 * portico: command line. Wires the modules together and hands over to the
 * runtime; nothing else lives here.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include "proxy/proxy.h"
#include "upstream/upstream.h"

#define DEFAULT_CONF "/etc/portico/portico.conf"

static void usage(FILE *out)
{
    fprintf(out,
            "usage: portico [-c FILE] [-t] [-d] [-s reload|stop|quit|reopen] [-v] [-h]\n"
            "  -c FILE   configuration file (default " DEFAULT_CONF ")\n"
            "  -t        check the configuration and exit\n"
            "  -d        run in the background (daemon)\n"
            "  -s SIGNAL send a signal to the running instance (pid file):\n"
            "            reload (SIGHUP), stop (SIGTERM, graceful), quit (SIGQUIT,\n"
            "            immediate), reopen (SIGUSR1, reopen logs)\n"
            "  -v        print the version and linked libraries\n");
}

static void print_version(void)
{
    char pcre[64] = "";
    pcre2_config(PCRE2_CONFIG_VERSION, pcre);
    printf("portico version %s\n", PT_VERSION);
    printf("built with: PCRE2 %s (JIT %s)\n", pcre,
           pcre2_config(PCRE2_CONFIG_JIT, &(uint32_t){0}) >= 0 ? "available" : "unavailable");
#ifdef __clang__
    printf("compiler: clang %s\n", __clang_version__);
#elif defined(__GNUC__)
    printf("compiler: gcc %d.%d.%d\n", __GNUC__, __GNUC_MINOR__, __GNUC_PATCHLEVEL__);
#endif
}

static int check_config(const char *path)
{
    pt_conf_err_t err = {{0}};
    pt_snapshot_t *s = pt_snapshot_load(path, 1, &err);
    if (!s) {
        fprintf(stderr, "%s\n", err.msg);
        fprintf(stderr, "portico: configuration file %s test failed\n", path);
        return 1;
    }
    pt_snapshot_unref(s);
    fprintf(stderr, "portico: configuration file %s test is successful\n", path);
    return 0;
}

static int send_signal(const char *path, const char *name)
{
    int sig;
    if (strcmp(name, "reload") == 0)
        sig = SIGHUP;
    else if (strcmp(name, "stop") == 0)
        sig = SIGTERM;
    else if (strcmp(name, "quit") == 0)
        sig = SIGQUIT;
    else if (strcmp(name, "reopen") == 0)
        sig = SIGUSR1;
    else {
        fprintf(stderr, "portico: invalid signal \"%s\", expected reload|stop|quit|reopen\n", name);
        return 1;
    }
    pt_conf_err_t err = {{0}};
    pt_snapshot_t *s = pt_snapshot_load(path, 1, &err);
    if (!s) {
        fprintf(stderr, "%s\n", err.msg);
        if (sig == SIGHUP) fprintf(stderr, "portico: not reloading: the configuration is invalid\n");
        return 1;
    }
    const char *pidfile = s->main.pid_path;
    if (!pidfile) {
        fprintf(stderr, "portico: no pid file: set the \"pid\" directive in %s\n", path);
        pt_snapshot_unref(s);
        return 1;
    }
    FILE *f = fopen(pidfile, "r");
    long pid = 0;
    if (!f || fscanf(f, "%ld", &pid) != 1 || pid <= 0) {
        fprintf(stderr, "portico: cannot read pid file %s: %s\n", pidfile,
                f ? "no pid in it" : strerror(errno));
        if (f) fclose(f);
        pt_snapshot_unref(s);
        return 1;
    }
    fclose(f);
    pt_snapshot_unref(s);
    if (kill((pid_t)pid, sig) < 0) {
        fprintf(stderr, "portico: kill(%ld, %s): %s\n", pid, name, strerror(errno));
        return 1;
    }
    return 0;
}

int main(int argc, char **argv)
{
    const char *conf = DEFAULT_CONF, *sig = NULL;
    bool test = false, daemon = false;
    int opt;
    while ((opt = getopt(argc, argv, "c:ts:dvVh")) != -1) {
        switch (opt) {
        case 'c':
            conf = optarg;
            break;
        case 't':
            test = true;
            break;
        case 's':
            sig = optarg;
            break;
        case 'd':
            daemon = true;
            break;
        case 'v':
        case 'V':
            print_version();
            return 0;
        case 'h':
            usage(stdout);
            return 0;
        default:
            usage(stderr);
            return 2;
        }
    }
    if (optind < argc) {
        usage(stderr);
        return 2;
    }
    if (pt_proxy_init() < 0 || pt_upstream_init() < 0) {
        fprintf(stderr, "portico: start-up registration failed\n");
        return 1;
    }
    if (test) return check_config(conf);
    if (sig) return send_signal(conf, sig);
    pt_run_opts_t opts = {conf, daemon};
    return pt_proxy_run(&opts);
}
