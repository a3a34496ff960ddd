<?php

/*
 * Bootstrap of the client's tests: autoloading without composer (the package
 * has no dependencies, and the tests must run from a plain checkout), then
 * one real deferd for the tests to share.
 *
 * The server is $DEFERD, or the ASan build of this tree (make build/asan/deferd):
 * a sanitizer build, so that the client's requests also check the server.
 */

declare(strict_types=1);

spl_autoload_register(static function (string $class): void {
    $roots = ['Defer\\Tests\\' => __DIR__ . '/', 'Defer\\' => dirname(__DIR__) . '/src/'];
    foreach ($roots as $prefix => $dir) {
        if (str_starts_with($class, $prefix)) {
            $file = $dir . str_replace('\\', '/', substr($class, strlen($prefix))) . '.php';
            if (is_file($file)) {
                require $file;
            }

            return;
        }
    }
});

(static function (): void {
    $binary = getenv('DEFERD');
    if ($binary === false || $binary === '') {
        $binary = dirname(__DIR__, 3) . '/build/asan/deferd';
    }
    if (!is_file($binary) || !is_executable($binary)) {
        fwrite(STDERR, "clients/php tests: no deferd binary at $binary\n"
            . "Build it (make build/asan/deferd at the top of the tree) or set DEFERD to one.\n");
        exit(2);
    }
    foreach (['posix', 'pcntl'] as $extension) {
        if (!extension_loaded($extension)) {
            fwrite(STDERR, "clients/php tests: the tests need ext-$extension (to signal the server)\n");
            exit(2);
        }
    }
    try {
        Defer\Tests\Support\Servers::init($binary);
    } catch (Throwable $e) {
        fwrite(STDERR, 'clients/php tests: ' . $e->getMessage() . "\n");
        exit(2);
    }
})();
