/*
 * probes.h - USDT probes (provider "iocomp"), for bpftrace, perf, systemtap.
 *
 * Each probe is one nop in the code (sys/sdt.h) and a note in the ELF file
 * (.note.stapsdt) naming it and where its arguments are; nothing runs until
 * a tracer attaches. Built in when <sys/sdt.h> is there at configure time
 * (the Debian package systemtap-sdt-dev; CMake IOCOMP_HAVE_SDT), else the
 * macros are empty. Arguments (all integers or pointers):
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
#define IOC_PROBE2(n, a, b) ((void)0)
#define IOC_PROBE4(n, a, b, c, d) ((void)0)
#define IOC_PROBE5(n, a, b, c, d, f) ((void)0)
#endif

#endif
