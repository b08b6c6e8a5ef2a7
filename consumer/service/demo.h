/*
 * demo: the scheduling scenario, offline (see demo.c).
 */
#ifndef SBOMD_SERVICE_DEMO_H
#define SBOMD_SERVICE_DEMO_H

int demo_main(int argc, char **argv);

#endif
