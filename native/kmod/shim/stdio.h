#include "../kcompat.h" /* shim: see kcompat.h */
