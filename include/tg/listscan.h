/*
 * A light scanner for the gateway's list replies: a JSON array of objects
 * is split into each element's byte range without building any tree, so
 * that elements whose bytes are known to be in sync need not be parsed
 * (see verified.h).  It checks only what it must to find the boundaries:
 * strings (with their escapes), brackets that match, and nothing but
 * whitespace and commas between the elements.  Whatever it accepts, a
 * range it returns starts with '{' and ends with the matching '}'; the
 * content of a range is not validated (a range that is parsed goes through
 * cJSON).  Pure: no I/O, no allocation besides the result.
 */
#ifndef TG_LISTSCAN_H
#define TG_LISTSCAN_H

#include <stddef.h>

/* Deeper nesting is refused (cJSON refuses past 1000 levels too). */
#define TG_LISTSCAN_MAX_DEPTH 1000

struct tg_listscan_range {
	size_t off, len;
};

struct tg_listscan {
	struct tg_listscan_range *items;
	size_t len, alloc;
};

/*
 * Splits data[0..len) (a JSON array whose elements are all objects, or the
 * literal null an empty gateway may send, surrounded by optional JSON
 * whitespace) into the ranges of its elements, in order.  Returns 0, or
 * TG_EINVALID for anything else (another kind of element, a string or
 * bracket left open, trailing bytes...): the caller then parses the reply
 * whole and reports what is wrong with it.  out is reset first; release it
 * with tg_listscan_release, also after a failure.
 */
int tg_listscan_split(struct tg_listscan *out, const char *data, size_t len);
void tg_listscan_release(struct tg_listscan *ls);

/*
 * The same split while the reply is still arriving, so that elements can
 * be hashed and parsed as they come in instead of after the last byte.
 * data[0..avail) is what has arrived (the buffer may move between calls,
 * offsets stay valid); final says it is the whole reply.  Returns 1 with
 * the next complete element's range in *out, 0 when more bytes are needed
 * (with final: the reply ended well), TG_EINVALID as tg_listscan_split
 * would for the whole reply (then again on every later call).  Feeding the
 * bytes in any number of steps gives the ranges and the verdict of one
 * tg_listscan_split, in time linear in the reply.
 */
enum tg_listscan_state {
	TG_LISTSCAN_START, /* before '[' or null */
	TG_LISTSCAN_FIRST, /* after '[': an element or ']' */
	TG_LISTSCAN_NEXT,  /* after ',': an element */
	TG_LISTSCAN_AFTER, /* after an element: ',' or ']' */
	TG_LISTSCAN_TAIL,  /* after ']' or null: whitespace only */
	TG_LISTSCAN_BAD,
};

struct tg_listscan_feed {
	enum tg_listscan_state state;
	size_t pos;      /* the next byte to look at */
	size_t retry_at; /* an open element is scanned again from this length on */
};

void tg_listscan_feed_init(struct tg_listscan_feed *f);
/* The bytes before this offset are scanned and handed out: a caller done
 * with the ranges returned may let them go (tg_listscan_feed_shift). */
size_t tg_listscan_feed_done(const struct tg_listscan_feed *f);
/* The first n bytes (at most tg_listscan_feed_done) were let go: data
 * passed from now on starts after them. */
void tg_listscan_feed_shift(struct tg_listscan_feed *f, size_t n);
int tg_listscan_next(struct tg_listscan_feed *f, const char *data, size_t avail, int final,
		     struct tg_listscan_range *out);

#endif
