/*
 * Functions that are too easy to misuse.  Included last by every source
 * file (through the Makefile's -include), so using one is a compile error.
 */
#ifndef TG_BANNED_H
#define TG_BANNED_H

#define TG_BANNED(func) sorry_##func##_is_banned

#undef strcpy
#define strcpy(x, y) TG_BANNED(strcpy)
#undef strcat
#define strcat(x, y) TG_BANNED(strcat)
#undef strncpy
#define strncpy(x, y, n) TG_BANNED(strncpy)
#undef strncat
#define strncat(x, y, n) TG_BANNED(strncat)
#undef sprintf
#define sprintf(...) TG_BANNED(sprintf)
#undef vsprintf
#define vsprintf(...) TG_BANNED(vsprintf)
#undef strtok
#define strtok(x, y) TG_BANNED(strtok)
#undef atoi
#define atoi(x) TG_BANNED(atoi)
#undef atol
#define atol(x) TG_BANNED(atol)
#undef gets
#define gets(x) TG_BANNED(gets)

#endif
