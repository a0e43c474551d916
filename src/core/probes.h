/*
 * probes.h - USDT probes (provider "iocomp"), for bpftrace, perf, systemtap.
 *
 * Each probe is one nop in the code (sys/sdt.h) and a note in the ELF file
 * (.note.stapsdt) naming it and where its arguments are; nothing runs until
 * a tracer attaches. Built in when <sys/sdt.h> is there at configure time
 * (the Debian package systemtap-sdt-dev; CMake IOCOMP_HAVE_SDT), else the
 * macros only use their arguments. Arguments (integers or pointers, and
 * expressions without side effects):
 *
 *   submit   (engine, fd, op, ov)            an I/O request accepted (io.c)
 *   complete (engine, status, bytes, ov, key) a callback about to run (worker.c)
 *   steal    (engine, thief index, victim index, packets)          (worker.c)
 *   park     (engine, worker index)          a worker going to sleep (park.c)
 *   wake     (engine, worker index)          a parked worker woken (park.c)
 *   inject   (engine, port index, status, bytes) a host thread's post queued (queue.c)
 *   rescue   (engine, worker index)          the monitor takes over a stuck
 *                                            worker's ring (scale.c)
 *   close    (engine, port handle)           iocomp_port_close() entered (port.c)
 *
 * bpftrace -e 'usdt:/path/libiocomp.so:iocomp:complete { @[arg1] = count(); }'
 * (docs/ARCHITECTURE.md, "Probes", has the one-liners that were run).
 */
#ifndef IOCOMP_PROBES_H
#define IOCOMP_PROBES_H

#if defined(IOCOMP_HAVE_SDT) && IOCOMP_HAVE_SDT
#include <sys/sdt.h>
#define IOC_PROBE2(n, a, b) DTRACE_PROBE2(iocomp, n, a, b)
#define IOC_PROBE4(n, a, b, c, d) DTRACE_PROBE4(iocomp, n, a, b, c, d)
#define IOC_PROBE5(n, a, b, c, d, f) DTRACE_PROBE5(iocomp, n, a, b, c, d, f)
#else
/* Without probes the arguments are still "used" (side-effect-free
 * expressions by rule: nothing is evaluated twice or left unused). */
#define IOC_PROBE2(n, a, b) ((void)(a), (void)(b))
#define IOC_PROBE4(n, a, b, c, d) ((void)(a), (void)(b), (void)(c), (void)(d))
#define IOC_PROBE5(n, a, b, c, d, f) ((void)(a), (void)(b), (void)(c), (void)(d), (void)(f))
#endif

#endif
