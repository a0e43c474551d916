/*
 * fault.h - fault seams, compiled only into test builds (IOCOMP_FAULT_INJECTION).
 *
 * IOC_FAULT(site) goes right before an allocation or a pthread_create; it is
 * true when the test armed that site to fail now (iocomp/testing.h). In
 * every other build it is the constant 0 and the compiler removes it.
 */
#ifndef IOCOMP_CORE_FAULT_H
#define IOCOMP_CORE_FAULT_H

#include <stdbool.h>
#include <iocomp/testing.h>

#if defined(IOCOMP_FAULT_INJECTION)
bool ioc_fault_hit(enum iocomp_fault_site site);
void ioc_fault_pause(void); /* IOCOMP_FAULT_PAUSE: sleeps 50 ms when armed for this call */
#define IOC_FAULT(site) ioc_fault_hit(site)
#define IOC_FAULT_PAUSE() ioc_fault_pause()
#else
#define IOC_FAULT(site) 0
#define IOC_FAULT_PAUSE() ((void)0)
#endif

#endif
