<?php
// Bootstrap for the PHP client tests: loads Debian's pheanstalk 4 and the
// helpers, and starts the deferd named by $DEFERD on a free loopback port
// (stopped and checked by ZzServerShutdownTest, or at exit).
// Every test file requires this file itself, because `phpunit tests/php`
// run from the top of the tree does not read tests/php/phpunit.xml.

declare(strict_types=1);

if (defined('DEFER_PHP_TESTS_BOOTSTRAPPED')) {
    return;
}
define('DEFER_PHP_TESTS_BOOTSTRAPPED', true);

require_once __DIR__ . '/lib/autoload.php';

\Defer\PhpTests\Harness::init();
