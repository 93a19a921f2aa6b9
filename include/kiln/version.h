/*
 * The kiln version: the one place it is written.  kilnd reports it (ping,
 * describe, --version); `make` generates client/kiln/_version.py from it, so
 * the Python client's kiln.__version__ is the same (a test checks both).
 */
#ifndef KILN_VERSION_H
#define KILN_VERSION_H

#define KILN_VERSION "0.1.0"

#endif
